import BulkheadVMM
import Glibc

exit(FirecrackerCommandLine.main(Array(CommandLine.arguments.dropFirst())))
