//! CPU time and memory of a process, read from `/proc` (Linux).

use std::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat` times. 100 on every Linux
/// architecture we run on (`getconf CLK_TCK`).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time used by a process at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    ticks: u64,
}

/// User plus system CPU time of `pid` (all threads), or `None` if it cannot be read.
pub fn cpu(pid: u32) -> Option<CpuSample> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields resume after its closing parenthesis.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the file, utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(CpuSample {
        at: Instant::now(),
        ticks: utime + stime,
    })
}

/// Percent of one core used between two samples (200 means two cores busy).
pub fn cpu_percent(start: CpuSample, end: CpuSample) -> f64 {
    let wall = end.at.duration_since(start.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    let cpu = end.ticks.saturating_sub(start.ticks) as f64 / TICKS_PER_SECOND;
    100.0 * cpu / wall
}

/// Busy and total clock ticks of every CPU since boot, from `/proc/stat`. Busy time
/// includes interrupts and softirqs, which a process's own CPU time misses (the kernel's
/// packet delivery for a UDP server largely runs there).
pub fn cpu_ticks() -> Vec<(u64, u64)> {
    let Ok(text) = std::fs::read_to_string("/proc/stat") else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let total: u64 = v.iter().take(8).sum();
            // idle and iowait
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle.min(total), total)
        })
        .collect()
}

/// Percent busy of each CPU between two [`cpu_ticks`] readings.
pub fn cpu_busy_percent(start: &[(u64, u64)], end: &[(u64, u64)]) -> Vec<f64> {
    start
        .iter()
        .zip(end)
        .map(|((b0, t0), (b1, t1))| {
            let total = t1.saturating_sub(*t0);
            if total == 0 {
                0.0
            } else {
                100.0 * b1.saturating_sub(*b0) as f64 / total as f64
            }
        })
        .collect()
}

/// Resident memory of `pid` in MiB.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        let a = cpu(me).expect("own stat");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        let b = cpu(me).expect("own stat");
        assert!(cpu_percent(a, b) >= 0.0);
        assert!(rss_mib(me).expect("own status") > 0.0);
        assert!(cpu(u32::MAX).is_none());
        let t = cpu_ticks();
        assert!(!t.is_empty());
        assert_eq!(cpu_busy_percent(&t, &t).len(), t.len());
    }
}
