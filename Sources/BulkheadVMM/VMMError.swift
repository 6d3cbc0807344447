import Glibc

/// A failed KVM ioctl or system call: which operation, and the errno it returned.
public struct KVMError: Error, CustomStringConvertible, Equatable {
    /// The ioctl or system call, e.g. "KVM_CREATE_VM" or "mmap guest memory".
    public let operation: String
    public let errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String {
        "\(operation): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// Checks the result of an ioctl or system call (-1 with errno on failure) and throws a KVMError
/// naming `operation` when it failed. Returns the non-negative result.
@discardableResult
func check(_ operation: @autoclosure () -> String, _ result: Int32) throws(KVMError) -> Int32 {
    if result < 0 {
        let code = errno  // before building the message, which may allocate and clobber errno
        throw KVMError(operation(), errno: code)
    }
    return result
}

/// Errors of the VMM's own checks (bad configuration or guest image), before anything runs.
public enum VMMError: Error, CustomStringConvertible, Equatable {
    /// A guest physical address range outside guest memory.
    case guestAddressOutOfRange(address: UInt64, length: UInt64, memorySize: UInt64)
    /// The kernel image is not an ELF64 x86-64 executable we can load; the reason says why.
    case invalidELF(String)
    /// The kernel image is not a bzImage we can boot at its 64-bit entry; the reason says why.
    case invalidBzImage(String)
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case let .guestAddressOutOfRange(address, length, memorySize):
            let hex = { (v: UInt64) in "0x" + String(v, radix: 16) }
            return "guest physical range \(hex(address))+\(hex(length)) is outside guest memory of \(hex(memorySize)) bytes"
        case let .invalidELF(reason):
            return "invalid kernel ELF: \(reason)"
        case let .invalidBzImage(reason):
            return "invalid kernel bzImage: \(reason)"
        case let .invalidConfiguration(reason):
            return "invalid VM configuration: \(reason)"
        }
    }
}
