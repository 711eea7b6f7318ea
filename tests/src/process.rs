//! Stopping and resuming a child process (SIGSTOP, SIGCONT), for tests that
//! freeze a writer while its temporary exists.

use std::io;
use std::process::Child;

fn signal(child: &Child, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    // SAFETY: kill(2) takes two integers and touches no memory of ours; the
    // pid is that of our own child, which has not been waited for, so it
    // cannot have been reused.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Freezes `child` (SIGSTOP): it stays alive, holding its files and locks,
/// but runs no further until [`resume`]d. Returns once the kernel has
/// stopped it.
pub fn stop(child: &Child) -> io::Result<()> {
    signal(child, libc::SIGSTOP)?;
    // SIGSTOP is delivered asynchronously: wait for the state in /proc.
    let status = format!("/proc/{}/stat", child.id());
    for _ in 0..10_000 {
        let stat = std::fs::read_to_string(&status)?;
        // "pid (comm) S ...": the state follows the last ')'.
        let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
        if matches!(state, Some(Some('T' | 't'))) {
            return Ok(());
        }
        std::thread::yield_now();
    }
    Err(io::Error::other("the child did not stop"))
}

/// Lets a [`stop`]ped `child` run again (SIGCONT).
pub fn resume(child: &Child) -> io::Result<()> {
    signal(child, libc::SIGCONT)
}
