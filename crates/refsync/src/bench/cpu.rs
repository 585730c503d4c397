//! CPU time by side. The benchmark runs refsync and the emulators in one process on
//! the same cores, so its throughput also pays for Microsoft's and the CRM's half of
//! the work (above all the RSA signature on every webhook). The emulators run on
//! threads named [`EMULATOR_THREAD_NAME`]; this reads each thread's CPU time from
//! `/proc/self/task`, so the figures can say which side spent what.

use crate::demo::EMULATOR_THREAD_NAME;
use cpu_time::ProcessTime;
use std::time::Duration;

/// Linux reports thread times in `USER_HZ` ticks, 100 per second on every
/// architecture it exposes to user space.
const TICKS_PER_SECOND: u64 = 100;

/// CPU time used by the process so far, and by which side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuUse {
    total: Duration,
    /// Threads of the emulators' runtime; `None` where `/proc` is not available.
    emulators: Option<Duration>,
    /// The thread driving the benchmark (it sends, and watches the store).
    driver: Option<Duration>,
}

/// CPU time spent between two readings, by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSpent {
    /// Every thread.
    pub total: Duration,
    /// The emulators' threads, when known.
    pub emulators: Option<Duration>,
    /// refsync's threads (every thread but the emulators' and the driver's), when known.
    /// Threads that ended within the window count here, so this errs high.
    pub refsync: Option<Duration>,
}

impl CpuUse {
    /// Reads the process's CPU time now.
    pub(crate) fn now() -> Self {
        let total = ProcessTime::try_now()
            .map(|t| t.as_duration())
            .unwrap_or_default();
        let (emulators, driver) = match by_thread() {
            Some((e, d)) => (Some(e), Some(d)),
            None => (None, None),
        };
        Self {
            total,
            emulators,
            driver,
        }
    }

    /// What was spent from `self` to `later`.
    pub(crate) fn spent_until(&self, later: &CpuUse) -> CpuSpent {
        let total = later.total.saturating_sub(self.total);
        let emulators = later
            .emulators
            .zip(self.emulators)
            .map(|(b, a)| b.saturating_sub(a));
        let driver = later
            .driver
            .zip(self.driver)
            .map(|(b, a)| b.saturating_sub(a));
        let refsync = emulators
            .zip(driver)
            .map(|(e, d)| total.saturating_sub(e).saturating_sub(d));
        CpuSpent {
            total,
            emulators,
            refsync,
        }
    }
}

/// (emulator threads, driver thread) CPU time, from `/proc/self/task/*/stat`.
fn by_thread() -> Option<(Duration, Duration)> {
    let pid = std::process::id().to_string();
    let mut emulators = 0;
    let mut driver = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        let Some((name, ticks)) = parse_stat(&stat) else {
            continue;
        };
        if task.file_name().to_str() == Some(pid.as_str()) {
            driver += ticks;
        } else if name.starts_with(EMULATOR_THREAD_NAME) {
            emulators += ticks;
        }
    }
    Some((ticks_to_duration(emulators), ticks_to_duration(driver)))
}

/// The thread's name and its user + system ticks, from one `stat` line
/// (`tid (name) state ppid … utime stime …`; the name may hold spaces or parentheses).
fn parse_stat(stat: &str) -> Option<(&str, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    let mut fields = stat.get(close + 1..)?.split_whitespace();
    // After the name: state is field 3, utime field 14 and stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, utime + stime))
}

fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_and_ticks_from_a_stat_line() {
        let line = "4242 (emulator (2)) S 1 4242 4242 0 -1 4194368 91 0 0 0 250 37 0 0 20 0 1 0";
        assert_eq!(parse_stat(line), Some(("emulator (2)", 287)));
        assert_eq!(parse_stat("4242 (x) S 1"), None);
    }

    #[test]
    fn the_driver_and_the_emulators_are_taken_out_of_refsyncs_share() {
        let before = CpuUse {
            total: Duration::from_millis(1000),
            emulators: Some(Duration::from_millis(300)),
            driver: Some(Duration::from_millis(100)),
        };
        let after = CpuUse {
            total: Duration::from_millis(3000),
            emulators: Some(Duration::from_millis(1100)),
            driver: Some(Duration::from_millis(200)),
        };
        let spent = before.spent_until(&after);
        assert_eq!(spent.total, Duration::from_millis(2000));
        assert_eq!(spent.emulators, Some(Duration::from_millis(800)));
        assert_eq!(spent.refsync, Some(Duration::from_millis(1100)));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn every_thread_of_this_process_can_be_read() {
        assert!(by_thread().is_some());
        assert!(CpuUse::now().emulators.is_some());
    }
}
