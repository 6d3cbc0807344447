import Glibc

/// `bulkhead-vmm fetch-kernel --dir CACHE [--module NAME]...`: stages Debian's cloud kernel and the
/// guest's modules in CACHE (see `GuestKernel.fetch`) and prints where they are, one
/// `key=value` line each, modules in load order (dependencies first).
public enum FetchKernelCommand {
    public static let usage = """
        Usage: bulkhead-vmm fetch-kernel --dir CACHE [--module NAME]...

        Downloads the kernel package behind linux-image-cloud-amd64 with apt-get download into
        CACHE/debs (nothing is installed), extracts it with dpkg-deb and keeps vmlinuz, the ELF
        vmlinux decompressed from it (boots without the guest decompressing itself), and the
        guest's modules with their dependencies (default: \(GuestKernel.guestModules.joined(separator: " "))).
        --module adds a module (repeatable). Run again, it reuses the cache. Prints:
          release=R  vmlinuz=PATH  vmlinux=PATH  modules_dir=PATH  module=PATH (relative to modules_dir, load order)
        """

    public static func main(_ arguments: [String]) -> Int32 {
        var directory: String?
        var modules = GuestKernel.guestModules
        var rest = arguments[...]
        while let a = rest.popFirst() {
            switch a {
            case "--dir", "--module":
                guard let v = rest.popFirst() else { printError("fetch-kernel: \(a) needs a value"); return 2 }
                if a == "--dir" { directory = v } else { modules.append(v) }
            case "--help", "-h": print(usage); return 0
            default: printError("fetch-kernel: unknown argument \(a)\n\(usage)"); return 2
            }
        }
        signal(SIGPIPE, SIG_IGN)  // a closed stdout must not kill us before the scratch files are removed
        guard let directory else { printError("fetch-kernel: --dir CACHE is required\n\(usage)"); return 2 }
        do {
            let kernel = try GuestKernel.fetch(cacheDirectory: directory, modules: modules) { printError("fetch-kernel: \($0)") }
            var text = "release=\(kernel.release)\nvmlinuz=\(kernel.vmlinuz)\nvmlinux=\(kernel.vmlinux)\nmodules_dir=\(kernel.modulesDirectory)\n"
            for m in try kernel.modulePaths(modules) { text += "module=\(m)\n" }
            print(text, terminator: "")
            return 0
        } catch {
            printError("fetch-kernel: \(error)")
            return 1
        }
    }
}
