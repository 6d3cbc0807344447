import BulkheadVMM
import CBulkhead
import Glibc

// One malloc arena, before any thread starts (see bh_malloc_single_arena).
_ = bh_malloc_single_arena()
exit(FirecrackerCommandLine.main(Array(CommandLine.arguments.dropFirst())))
