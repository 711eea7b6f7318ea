//! Resident memory of this process, from `/proc/self/status` (Linux).

use std::fs;

/// A snapshot of this process's resident memory, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: peak resident since the process started or since
    /// [`reset_peak`].
    pub peak: u64,
    /// `RssAnon`: resident anonymous memory (heap, stacks): copies of data
    /// show up here.
    pub anon: u64,
    /// `RssFile`: resident pages of mapped files (shared with the page
    /// cache, not a copy).
    pub file: u64,
}

/// Reads this process's memory counters (all zero where `/proc` is missing).
pub fn memory() -> Memory {
    let mut memory = Memory::default();
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return memory;
    };
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let kib: u64 = value
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap_or(0);
        let slot = match key {
            "VmRSS" => &mut memory.rss,
            "VmHWM" => &mut memory.peak,
            "RssAnon" => &mut memory.anon,
            "RssFile" => &mut memory.file,
            _ => continue,
        };
        *slot = kib * 1024;
    }
    memory
}

/// Resets `VmHWM` to the current resident size (writes `5` to
/// `/proc/self/clear_refs`, Linux 4.0 and later); returns whether it worked.
pub fn reset_peak() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Time this process's threads have spent on a CPU and waiting on a run
/// queue for one, in seconds; zeros where unavailable. CPU time is
/// `getrusage(RUSAGE_SELF)`, which counts threads that have ended too (the
/// writer's worker threads); waiting time is summed over the threads alive
/// (`/proc/self/task/*/schedstat`, Linux with schedstats): the share of the
/// wall time the main thread lost to other processes competing for the
/// CPUs.
pub fn cpu_times() -> (f64, f64) {
    let waiting = fs::read_dir("/proc/self/task").map_or(0, |tasks| {
        tasks
            .flatten()
            .filter_map(|task| fs::read_to_string(task.path().join("schedstat")).ok())
            .filter_map(|stat| stat.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum()
    });
    (process_cpu_seconds(), waiting as f64 * 1e-9)
}

/// User plus system CPU time of the whole process, ended threads included.
#[allow(unsafe_code)]
fn process_cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable `rusage`; `getrusage` only writes
    // it, and fully when it returns 0.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return 0.0;
        }
        usage.assume_init()
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
