#include "cbulkhead.h"
