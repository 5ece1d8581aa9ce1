//! This process's CPU time and resident memory, from `/proc/self` (Linux).

/// CPU and memory of the process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time since start, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
}

/// Clock ticks per second of `/proc/self/stat`'s times: 100 on every Linux we run on
/// (USER_HZ is fixed by the kernel's ABI).
const TICKS_PER_SECOND: f64 = 100.0;
/// Page size assumed for `/proc/self/statm` (4 KiB on x86-64 and most arm64 kernels).
const PAGE_BYTES: u64 = 4096;

impl ProcessStats {
    /// Reads them; `None` where `/proc` is missing or unreadable.
    pub fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        parse(&stat, &statm)
    }
}

fn parse(stat: &str, statm: &str) -> Option<ProcessStats> {
    // The command name (field 2) may hold spaces; fields after its ')' are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(ProcessStats {
        cpu_seconds: (utime + stime) / TICKS_PER_SECOND,
        rss_bytes: pages * PAGE_BYTES,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_lines() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1 1 1";
        let p = parse(stat, "1000 300 20 1 0 50 0").expect("parses");
        assert_eq!(p.cpu_seconds, 3.0);
        assert_eq!(p.rss_bytes, 300 * 4096);
        assert!(ProcessStats::read().is_some(), "this test runs on Linux");
    }
}
