import Glibc

/// RFC 3339 timestamps with nanoseconds in UTC, as runc writes them in state and logs.
public enum Timestamp {
    public static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return format(seconds: ts.tv_sec, nanoseconds: ts.tv_nsec)
    }

    public static func format(seconds: Int, nanoseconds: Int) -> String {
        var t = time_t(seconds)
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let nanos = String(nanoseconds)
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T"
            + "\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2))."
            + String(repeating: "0", count: 9 - nanos.count) + nanos + "Z"
    }
}
