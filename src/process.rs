//! What `compare` and `check` both need from the system about the servers
//! they start: which sockets are listening (read from the kernel's tables,
//! so a server that serves one client is not sent a probe connection), and
//! ending a server's whole process group.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Every TCP socket's local address, and whether it is listening, from
/// `/proc/net/tcp` and `tcp6`; `None` where the tables cannot be read or list
/// no socket at all (not Linux, or a kernel that hides them).
pub fn tcp_sockets() -> Option<Vec<(SocketAddr, bool)>> {
    let sockets = tcp_sockets_with_inodes()?;
    Some(
        sockets
            .into_iter()
            .map(|(addr, listening, _)| (addr, listening))
            .collect(),
    )
}

/// As [`tcp_sockets`], with each socket's inode, which names it in the
/// `/proc/PID/fd` links of the processes that hold it.
pub fn tcp_sockets_with_inodes() -> Option<Vec<(SocketAddr, bool, u64)>> {
    let mut found = Vec::new();
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(table) = std::fs::read_to_string(path) {
            found.extend(sockets(&table));
        }
    }
    (!found.is_empty()).then_some(found)
}

/// The `/proc/PID` folders of the live processes of group `pgid`; `None`
/// without `/proc`.
fn group_processes(pgid: u32) -> Option<Vec<PathBuf>> {
    let pids = loadgen::procstat::group_pids(pgid).ok()?;
    Some(
        pids.into_iter()
            .map(|pid| PathBuf::from(format!("/proc/{pid}")))
            .collect(),
    )
}

/// How long the threads of group `pgid` have been running or ready to run
/// (waiting for a core), from each thread's `schedstat`; `None` where the
/// kernel does not keep it. A process that spins is ready all the time,
/// however busy the machine, where its CPU time shrinks with its share.
pub fn group_runnable_time(pgid: u32) -> Option<Duration> {
    let mut total_ns = 0u64;
    let mut read_any = false;
    for process in group_processes(pgid)? {
        let Ok(tasks) = std::fs::read_dir(process.join("task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
            if let (Some(Some(run)), Some(Some(wait))) = (fields.next(), fields.next()) {
                total_ns += run + wait;
                read_any = true;
            }
        }
    }
    read_any.then(|| Duration::from_nanos(total_ns))
}

/// The inodes of the sockets the processes of group `pgid` hold open;
/// `None` without `/proc`.
pub fn group_socket_inodes(pgid: u32) -> Option<HashSet<u64>> {
    let mut inodes = HashSet::new();
    for path in group_processes(pgid)? {
        let Ok(fds) = std::fs::read_dir(path.join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let link = link.to_string_lossy();
            if let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|l| l.strip_suffix(']'))
            {
                inodes.extend(inode.parse::<u64>().ok());
            }
        }
    }
    Some(inodes)
}

/// The local address of every socket in a `/proc/net/tcp` or `tcp6` table,
/// whether it is listening (state `0A`), and its inode. Addresses are hex, in the kernel's byte
/// order: four bytes for IPv4, four 32-bit words for IPv6; IPv4-mapped IPv6
/// addresses come out as IPv4.
fn sockets(table: &str) -> impl Iterator<Item = (SocketAddr, bool, u64)> + '_ {
    table.lines().skip(1).filter_map(|line| {
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        let mut cols = line.split_whitespace().skip(1);
        let (ip, port) = cols.next()?.split_once(':')?;
        let state = cols.nth(1)?;
        let inode = cols.nth(5).and_then(|i| i.parse().ok()).unwrap_or(0);
        let port = u16::from_str_radix(port, 16).ok()?;
        let words: Vec<u32> = (0..ip.len() / 8)
            .map(|i| u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok())
            .collect::<Option<_>>()?;
        let ip: IpAddr = match words[..] {
            // Each 32-bit word as the kernel printed it, in host order, of
            // an address in network order.
            [v4] => Ipv4Addr::from(u32::from_be(v4)).into(),
            [_, _, _, _] => {
                let bits = words
                    .iter()
                    .fold(0u128, |bits, w| bits << 32 | u32::from_be(*w) as u128);
                let v6 = Ipv6Addr::from(bits);
                v6.to_ipv4_mapped().map_or(v6.into(), Into::into)
            }
            _ => return None,
        };
        Some((SocketAddr::new(ip, port), state == "0A", inode))
    })
}

/// Kills every process in group `pgid` (unix; elsewhere nothing), so a server
/// started through a shell, or one that forks, leaves nothing behind.
pub fn kill_group(pgid: u32) {
    #[cfg(unix)]
    {
        use std::process::{Command, Stdio};
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    #[cfg(not(unix))]
    let _ = pgid;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row's inode is read, and a real listener of ours is found by it.
    #[cfg(target_os = "linux")]
    #[test]
    fn our_listener_is_found_by_its_inode() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sockets = tcp_sockets_with_inodes().expect("tables readable here");
        let (_, _, inode) = sockets
            .into_iter()
            .find(|(a, l, _)| *l && a.port() == port)
            .expect("our listener is listed");
        let pgid = std::fs::read_to_string("/proc/self/stat").unwrap();
        let pgid: u32 = pgid[pgid.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .nth(2)
            .unwrap()
            .parse()
            .unwrap();
        assert!(group_socket_inodes(pgid).unwrap().contains(&inode));
    }

    /// Rows as Linux writes them: 127.0.0.1:8080 listening, a connection from it,
    /// [::]:8081 listening, and ::ffff:127.0.0.1:8082 listening.
    #[test]
    fn socket_tables_are_read() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue\n\
            0: 0100007F:1F90 00000000:0000 0A 00000000:00000000\n\
            1: 0100007F:1F90 0100007F:D431 01 00000000:00000000\n";
        let found: Vec<(SocketAddr, bool)> = sockets(tcp).map(|(a, l, _)| (a, l)).collect();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(found, [(local, true), (local, false)]);
        let tcp6 = "  sl  local_address                         remote_address                        st\n\
            0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A\n\
            1: 0000000000000000FFFF00000100007F:1F92 00000000000000000000000000000000:0000 0A\n";
        let found: Vec<(SocketAddr, bool)> = sockets(tcp6).map(|(a, l, _)| (a, l)).collect();
        assert_eq!(
            found,
            [
                ("[::]:8081".parse().unwrap(), true),
                ("127.0.0.1:8082".parse().unwrap(), true)
            ]
        );
    }
}
