//! CPU time, threads and memory of a process, read from the kernel's own accounting in
//! `/proc` — so a server is measured from outside, with no cooperation from its code.
//!
//! Linux only. On other systems every function returns [`Error::Unsupported`] and
//! `compare` prints `n/a`.
//!
//! CPU time comes from `/proc/PID/stat` (`utime`, `stime`, plus `cutime`, `cstime` for
//! children the process has reaped, so a forking server is counted whole) in clock ticks
//! of 10 ms. Read it before and after a measured phase and subtract ([`ProcSample::cpu_since`]):
//! over a phase of one second or more the tick granularity costs about 1%.
//! Threads, resident and peak resident memory come from `/proc/PID/status`
//! (`Threads`, `VmRSS`, `VmHWM`).
//!
//! A *process group* sample ([`sample_group`]) adds up every process whose group id is
//! `pgid`: an external server started through a shell, or one that forks per client, is
//! measured as a whole.

use std::time::Duration;

use crate::Error;

/// Whether this platform has the `/proc` files this module reads.
pub const SUPPORTED: bool = cfg!(target_os = "linux");

/// Length of one clock tick in `/proc/PID/stat`. Linux exports CPU times to user space in
/// `USER_HZ` = 100 ticks per second on every architecture it supports, whatever the
/// kernel's internal `HZ`.
const TICK: Duration = Duration::from_millis(10);

/// One reading of a process's (or a process group's) accounting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcSample {
    /// CPU time spent in user space, including reaped children.
    pub user: Duration,
    /// CPU time spent in the kernel on the process's behalf, including reaped children.
    pub system: Duration,
    /// Number of threads.
    pub threads: u64,
    /// Resident memory now, in bytes.
    pub rss: u64,
    /// Peak resident memory ("high-water mark") since the process started, in bytes.
    pub peak_rss: u64,
    /// Number of processes summed (1 for a single process).
    pub processes: u64,
}

/// CPU time used between two samples, split as the kernel accounts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// User-space time.
    pub user: Duration,
    /// Kernel time.
    pub system: Duration,
}

impl CpuTime {
    /// User plus system time.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }
}

impl ProcSample {
    /// CPU time used since `earlier` (zero, never negative, if the counters went back —
    /// which happens in a group when a member exits unreaped).
    pub fn cpu_since(&self, earlier: &ProcSample) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// The whole machine's CPU time, from the first line of `/proc/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemSample {
    /// Time all CPUs spent doing anything but idling or waiting for I/O, summed over CPUs.
    pub busy: Duration,
    /// Time a hypervisor ran something else while this machine's CPUs wanted to run.
    pub steal: Duration,
}

impl SystemSample {
    /// Busy and stolen time since `earlier`.
    pub fn since(&self, earlier: &SystemSample) -> SystemSample {
        SystemSample {
            busy: self.busy.saturating_sub(earlier.busy),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }
}

/// Samples the whole machine: with the server's and the generator's own CPU time
/// subtracted, what is left is other processes competing for the CPUs during a
/// measurement.
pub fn sample_system() -> Result<SystemSample, Error> {
    if !SUPPORTED {
        return Err(Error::Unsupported);
    }
    let text = read_file("/proc/stat")?;
    parse_system(&text).map_err(|reason| Error::Proc {
        path: "/proc/stat".into(),
        reason,
    })
}

/// Parses `cpu  user nice system idle iowait irq softirq steal ...` (ticks).
fn parse_system(text: &str) -> Result<SystemSample, String> {
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or("no cpu line")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse::<u64>().map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    if ticks.len() < 8 {
        return Err("cpu line too short".into());
    }
    // user + nice + system + irq + softirq; guest time is already inside user.
    let busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6];
    let to_time = |t: u64| Duration::from_millis(t.saturating_mul(10));
    Ok(SystemSample {
        busy: to_time(busy),
        steal: to_time(ticks[7]),
    })
}

/// The kernel's own memory that connections cost and a process's RSS does not show,
/// machine-wide: each thread's kernel stack, and the unreclaimable slab where socket
/// structures live plus the pages TCP holds in socket buffers. Machine-wide because
/// Linux does not break these down per process: a difference over a moment in which
/// only a server's connections changed is what they cost (both ends of a loopback
/// connection, the generator's included, for the sockets).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelMemory {
    /// `KernelStack` in `/proc/meminfo`, bytes.
    pub stacks: u64,
    /// `SUnreclaim` in `/proc/meminfo` plus TCP's `mem` pages in `/proc/net/sockstat`,
    /// bytes.
    pub sockets: u64,
}

/// Samples the kernel-side memory ([`KernelMemory`]); Linux only.
pub fn sample_kernel() -> Result<KernelMemory, Error> {
    if !SUPPORTED {
        return Err(Error::Unsupported);
    }
    let meminfo = read_file("/proc/meminfo")?;
    let sockstat = read_file("/proc/net/sockstat")?;
    parse_kernel(&meminfo, &sockstat).map_err(|reason| Error::Proc {
        path: "/proc/meminfo".into(),
        reason,
    })
}

/// Reads `KernelStack:` and `SUnreclaim:` (kB) and `TCP: ... mem N` (pages).
fn parse_kernel(meminfo: &str, sockstat: &str) -> Result<KernelMemory, String> {
    let kb = |key: &str| -> Result<u64, String> {
        let line = meminfo
            .lines()
            .find(|l| l.starts_with(key))
            .ok_or(format!("no {key} line"))?;
        let n = line.split_whitespace().nth(1).ok_or("no value")?;
        n.parse::<u64>()
            .map(|k| k * 1024)
            .map_err(|e| e.to_string())
    };
    let tcp_pages = sockstat
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let at = fields.iter().position(|&f| f == "mem")?;
            fields.get(at + 1)?.parse::<u64>().ok()
        })
        .unwrap_or(0);
    Ok(KernelMemory {
        stacks: kb("KernelStack:")?,
        sockets: kb("SUnreclaim:")? + tcp_pages * 4096,
    })
}

/// Samples one process.
pub fn sample_process(pid: u32) -> Result<ProcSample, Error> {
    if !SUPPORTED {
        return Err(Error::Unsupported);
    }
    read_one(&format!("/proc/{pid}")).map(|(sample, _pgrp)| sample)
}

/// Samples the process running this code (the load generator itself).
pub fn sample_self() -> Result<ProcSample, Error> {
    if !SUPPORTED {
        return Err(Error::Unsupported);
    }
    read_one("/proc/self").map(|(sample, _pgrp)| sample)
}

/// Sums every live process in process group `pgid`.
///
/// Processes that exit between listing `/proc` and reading their files are skipped.
/// Fails if no process of the group is found.
pub fn sample_group(pgid: u32) -> Result<ProcSample, Error> {
    let mut total = ProcSample::default();
    for (pid, _) in group(pgid)? {
        if let Ok((s, pgrp)) = read_one(&format!("/proc/{pid}")) {
            if pgrp == pgid {
                total.user += s.user;
                total.system += s.system;
                total.threads += s.threads;
                total.rss += s.rss;
                total.peak_rss += s.peak_rss;
                total.processes += 1;
            }
        }
    }
    if total.processes == 0 {
        return Err(Error::Proc {
            path: format!("/proc (process group {pgid})"),
            reason: "no such process group".into(),
        });
    }
    Ok(total)
}

/// The live processes (not zombies) of process group `pgid`.
pub fn group_pids(pgid: u32) -> Result<Vec<u32>, Error> {
    let live = group(pgid)?.filter(|(_, stat)| stat.live);
    Ok(live.map(|(pid, _)| pid).collect())
}

/// Every process listed in `/proc` whose stat line names group `pgid`, with that
/// line; processes that exit meanwhile are skipped.
fn group(pgid: u32) -> Result<impl Iterator<Item = (u32, Stat)>, Error> {
    if !SUPPORTED {
        return Err(Error::Unsupported);
    }
    let entries = std::fs::read_dir("/proc").map_err(|e| Error::Proc {
        path: "/proc".into(),
        reason: e.to_string(),
    })?;
    let pids = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok());
    Ok(pids.filter_map(move |pid| {
        let stat = read_stat(&format!("/proc/{pid}/stat")).ok()?;
        (stat.pgrp == pgid).then_some((pid, stat))
    }))
}

/// Reads `DIR/stat` and `DIR/status`; returns the sample and the process group id.
fn read_one(dir: &str) -> Result<(ProcSample, u32), Error> {
    let stat = read_stat(&format!("{dir}/stat"))?;
    let status_path = format!("{dir}/status");
    let status = read_file(&status_path)?;
    let status = parse_status(&status).map_err(|reason| Error::Proc {
        path: status_path,
        reason,
    })?;
    Ok((
        ProcSample {
            user: TICK * stat.user_ticks as u32,
            system: TICK * stat.system_ticks as u32,
            threads: status.threads,
            rss: status.rss,
            peak_rss: status.peak_rss,
            processes: 1,
        },
        stat.pgrp,
    ))
}

fn read_file(path: &str) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::Proc {
        path: path.into(),
        reason: e.to_string(),
    })
}

fn read_stat(path: &str) -> Result<Stat, Error> {
    let text = read_file(path)?;
    parse_stat(&text).map_err(|reason| Error::Proc {
        path: path.into(),
        reason,
    })
}

/// The fields of `/proc/PID/stat` this module uses.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    pgrp: u32,
    /// Not a zombie (state `Z`) or dead (`X`).
    live: bool,
    /// utime + cutime
    user_ticks: u64,
    /// stime + cstime
    system_ticks: u64,
}

/// Parses `/proc/PID/stat`. The command name (field 2) is in parentheses and may itself
/// contain spaces and parentheses, so fields are counted from the *last* `)`.
fn parse_stat(text: &str) -> Result<Stat, String> {
    let close = text.rfind(')').ok_or("no ')' after the command name")?;
    // Field 3 (state) is index 0 here, so field N is index N - 3.
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> Result<u64, String> {
        fields
            .get(n - 3)
            .ok_or_else(|| format!("field {n} missing"))?
            .parse::<u64>()
            .map_err(|e| format!("field {n}: {e}"))
    };
    let pgrp = field(5)?;
    let state = fields.first().ok_or("field 3 missing")?;
    Ok(Stat {
        pgrp: u32::try_from(pgrp).map_err(|_| "process group id out of range")?,
        live: !matches!(*state, "Z" | "X"),
        user_ticks: field(14)? + field(16)?,
        system_ticks: field(15)? + field(17)?,
    })
}

#[derive(Debug, PartialEq, Eq)]
struct Status {
    threads: u64,
    rss: u64,
    peak_rss: u64,
}

/// Parses `Threads:`, `VmRSS:` and `VmHWM:` (in kB) out of `/proc/PID/status`. A zombie
/// has no `Vm*` lines; its memory counts as zero.
fn parse_status(text: &str) -> Result<Status, String> {
    let mut status = Status {
        threads: 0,
        rss: 0,
        peak_rss: 0,
    };
    let mut saw_threads = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let number = || -> Result<u64, String> {
            let digits = value.split_whitespace().next().unwrap_or("");
            digits.parse::<u64>().map_err(|e| format!("{key}: {e}"))
        };
        match key {
            "Threads" => {
                status.threads = number()?;
                saw_threads = true;
            }
            "VmRSS" => status.rss = number()? * 1024,
            "VmHWM" => status.peak_rss = number()? * 1024,
            _ => {}
        }
    }
    if !saw_threads {
        return Err("no Threads: line".into());
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    /// Kernel stacks and socket memory are read from meminfo (kB) and sockstat (pages).
    #[test]
    fn kernel_memory_is_parsed() {
        let meminfo =
            "MemTotal: 100 kB\nSUnreclaim:        48012 kB\nKernelStack:        1904 kB\n";
        let sockstat = "sockets: used 14\nTCP: inuse 1 orphan 0 tw 773 alloc 1 mem 3\n";
        let k = parse_kernel(meminfo, sockstat).unwrap();
        assert_eq!(k.stacks, 1904 * 1024);
        assert_eq!(k.sockets, 48012 * 1024 + 3 * 4096);
        assert!(parse_kernel("MemTotal: 1 kB\n", sockstat).is_err());
    }

    use super::*;

    /// A stat line whose command name contains spaces and a ')' still parses by position.
    #[test]
    fn stat_with_awkward_command_name() {
        let line = "4242 (my (odd) server) S 1 4240 4240 0 -1 4194560 \
                    100 0 0 0 250 75 3 2 20 0 5 0 123 456 78 18446744073709551615";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            stat,
            Stat {
                pgrp: 4240,
                live: true,
                user_ticks: 253,
                system_ticks: 77
            }
        );
    }

    /// A truncated stat line is an error, not a panic.
    #[test]
    fn truncated_stat_is_an_error() {
        assert!(parse_stat("1 (x) S 0 1").is_err());
        assert!(parse_stat("garbage").is_err());
    }

    /// Threads, VmRSS and VmHWM are picked out of a status file and converted to bytes.
    #[test]
    fn status_fields() {
        let text = "Name:\tserver4\nVmHWM:\t    2048 kB\nVmRSS:\t    1536 kB\nThreads:\t3\n";
        assert_eq!(
            parse_status(text).unwrap(),
            Status {
                threads: 3,
                rss: 1536 * 1024,
                peak_rss: 2048 * 1024
            }
        );
    }

    /// On Linux this process can sample itself and its own process group.
    #[test]
    #[cfg(target_os = "linux")]
    fn sample_this_process() {
        let me = sample_self().unwrap();
        assert!(me.threads >= 1 && me.rss > 0 && me.peak_rss >= me.rss);
        let by_pid = sample_process(std::process::id()).unwrap();
        assert!(by_pid.threads >= 1);
    }

    /// The machine-wide cpu line adds user, nice, system, irq and softirq as busy.
    #[test]
    fn system_line() {
        let text = "cpu  100 5 50 1000 7 3 2 11 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        let s = parse_system(text).unwrap();
        assert_eq!(s.busy, Duration::from_millis(1600));
        assert_eq!(s.steal, Duration::from_millis(110));
        assert!(parse_system("cpu 1 2").is_err());
    }

    /// CPU deltas never go negative.
    #[test]
    fn cpu_since_saturates() {
        let a = ProcSample {
            user: Duration::from_millis(30),
            ..ProcSample::default()
        };
        let b = ProcSample::default();
        assert_eq!(b.cpu_since(&a).total(), Duration::ZERO);
        assert_eq!(a.cpu_since(&b).user, Duration::from_millis(30));
    }
}
