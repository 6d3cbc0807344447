#pragma once
#include "cbulkhead_kvm.h"
