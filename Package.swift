// swift-tools-version: 6.0
import PackageDescription

// Executables that engines start for every container are linked fully static: measured here,
// a static binary with FoundationEssentials starts in ~0.8 ms, a dynamic one in 2.3-6.2 ms.
// With -static-executable the linker does not follow FoundationEssentials' own dependencies
// (measured: undefined BigString and strtod_clocale symbols), so they are named here.
let staticExecutable: [LinkerSetting] = [
    .unsafeFlags(["-static-executable"]),
    .linkedLibrary("_FoundationCollections"),
    .linkedLibrary("_FoundationCShims"),
    .linkedLibrary("swiftSynchronization"),
]

// Concrete generic types such as KeyedDecodingContainer<Spec.CodingKeys> are by default looked up
// by mangled name at first use, and the runtime then checks CodingKeys: CodingKey by scanning
// every conformance record of the static binary (about 120k instructions per type, measured with
// callgrind: 2.4M of `create`). With this flag the compiler calls the metadata accessors directly.
let directMetadataAccess: [SwiftSetting] = [
    .unsafeFlags(["-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors"]),
]

// bulkhead-vmm links no Foundation: its JSON is BulkheadJSON's. Measured (release, 1 vCPU, 128 MiB,
// idle guest): the monitor's own RSS fell from 8.6 to 6.4 MiB and the binary from 27 to 18 MB.
//
// bulkhead-vmm's own memory is mostly its code, and Linux maps file pages 64 KiB around every fault
// ("fault-around"), so what counts is how many 64 KiB windows the code it runs is spread over, not
// its size. lld puts the functions a run executes (Sources/bulkhead-vmm/hot-symbols.txt, made by
// bench/vmm-hot-symbols.sh) first and together; swiftc on Linux already gives each function a
// section of its own, except merged ones (-disable-llvm-merge-functions-pass measured no better).
// Measured (release, 1 vCPU, 128 MiB, idle guest): monitor RSS 5.3 -> 4.4 MiB. A stale list
// costs only locality: names that no longer exist are ignored. SwiftPM does not see the list as
// an input of the link; the script relinks.
let vmmExecutable: [LinkerSetting] = [
    .unsafeFlags([
        "-static-executable", "-use-ld=lld",
        "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/Sources/bulkhead-vmm/hot-symbols.txt",
        "-Xlinker", "--no-warn-symbol-ordering",
    ]),
]

let package = Package(
    name: "Bulkhead",
    products: [
        .executable(name: "bulkhead-runtime", targets: ["bulkhead-runtime"]),
        .executable(name: "bulkhead-vmm", targets: ["bulkhead-vmm"]),
    ],
    targets: [
        // Only what Swift must not or cannot do: the code between clone and execve, and
        // kernel constants that are function-like macros.
        .target(
            name: "CBulkhead",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        // libseccomp (Debian libseccomp-dev): compiles config.json's seccomp rules to BPF.
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        // JSON without Foundation: a strict parser into an ordered value tree, and compact output.
        .target(name: "BulkheadJSON", swiftSettings: directMetadataAccess),
        // Codable types of the OCI runtime spec, with validation. No syscalls.
        .target(name: "BulkheadOCI", dependencies: ["BulkheadJSON"], swiftSettings: directMetadataAccess),
        // Typed wrappers over Linux syscalls and kernel interfaces.
        .target(name: "BulkheadLinux", dependencies: ["CBulkhead", "CSeccomp", "BulkheadOCI"],
                swiftSettings: directMetadataAccess),
        // The container engine: bundle -> running process, state directory, lifecycle.
        .target(name: "BulkheadContainer", dependencies: ["BulkheadOCI", "BulkheadLinux", "CBulkhead"], swiftSettings: directMetadataAccess),
        // runc's command line over the container engine.
        .target(name: "BulkheadRuntimeCLI", dependencies: ["BulkheadContainer", "BulkheadOCI", "BulkheadLinux"], swiftSettings: directMetadataAccess),
        // The microVM monitor: KVM VM and vCPUs, guest memory, x86-64 Linux boot, legacy devices.
        // Its threads confine themselves with seccomp filters built by BulkheadLinux's SeccompFilter.
        .target(name: "BulkheadVMM", dependencies: ["CBulkhead", "BulkheadJSON", "BulkheadLinux", "BulkheadOCI"],
                swiftSettings: directMetadataAccess),
        .executableTarget(
            name: "bulkhead-runtime",
            dependencies: ["BulkheadRuntimeCLI"],
            linkerSettings: staticExecutable
        ),
        // Fixtures are read through #filePath (Bundle.module needs all of Foundation).
        // Firecracker's command line and API over the microVM monitor; one process per microVM.
        .executableTarget(
            name: "bulkhead-vmm",
            dependencies: ["BulkheadVMM", "CBulkhead"],
            exclude: ["hot-symbols.txt"],
            linkerSettings: vmmExecutable
        ),
        .testTarget(name: "BulkheadJSONTests", dependencies: ["BulkheadJSON"]),
        .testTarget(name: "BulkheadOCITests", dependencies: ["BulkheadOCI", "BulkheadJSON"], exclude: ["Fixtures"]),
        .testTarget(name: "BulkheadLinuxTests", dependencies: ["BulkheadLinux", "BulkheadOCI"]),
        .testTarget(name: "BulkheadContainerTests", dependencies: ["BulkheadContainer", "BulkheadOCI", "BulkheadLinux"]),
        .testTarget(name: "BulkheadRuntimeCLITests", dependencies: ["BulkheadRuntimeCLI"]),
        // Guests/ holds the C/assembly test guest that the tests compile with gcc at run time.
        // The bulkhead-vmm tests run the binary by path, not as a dependency (see below).
        .testTarget(name: "BulkheadVMMTests", dependencies: ["BulkheadVMM", "BulkheadJSON", "BulkheadLinux"], exclude: ["Guests", "NestedTools"]),
        // Not a module dependency on the bulkhead-runtime executable: its -static-executable flag
        // would be applied to the test binary, which cannot link statically (no static Testing/XCTest
        // libraries; measured). `swift build --build-tests` still builds the binary; run it by path.
        .testTarget(
            name: "RuntimeIntegrationTests",
            dependencies: ["BulkheadRuntimeCLI", "BulkheadLinux", "BulkheadOCI"]
        ),
    ]
)
