import BulkheadRuntimeCLI
import Glibc

exit(RuntimeCommandLine.main(Array(CommandLine.arguments.dropFirst())))
