import Glibc

/// The terminal on bulkhead-vmm's stdin while the guest owns the console: as Firecracker does, it
/// is switched to raw input (no line editing, no local echo, no signals from ^C/^Z/^\), so every
/// key reaches the guest's serial port as typed and the guest echoes; the saved settings come back
/// when the VMM ends. Not a terminal (a pipe, a file, /dev/null): nothing to do.
public final class ConsoleTerminal: @unchecked Sendable {
    public let fd: Int32
    private let saved: termios

    /// Switches `fd` to raw input if it is a terminal; nil if it is not (or refuses).
    public static func enterRawMode(fd: Int32 = 0) -> ConsoleTerminal? {
        guard isatty(fd) == 1 else { return nil }
        var settings = termios()
        guard tcgetattr(fd, &settings) == 0 else { return nil }
        let saved = settings
        settings.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG)
        guard tcsetattr(fd, TCSANOW, &settings) == 0 else { return nil }
        return ConsoleTerminal(fd: fd, saved: saved)
    }

    private init(fd: Int32, saved: termios) {
        self.fd = fd
        self.saved = saved
    }

    /// Puts the saved settings back (ioctl TCSETS, which the VMM thread's filter allows on its way out).
    public func restore() {
        var settings = saved
        tcsetattr(fd, TCSANOW, &settings)
    }
}
