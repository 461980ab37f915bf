//! What a run was: when, from which commit, on which kernel and CPU, pinned or not,
//! with which build and command line. Figures without this are hard to compare with
//! anyone else's, or with next month's.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The run's manifest, in the JSON, the page and under the text report.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    /// When the run started, UTC (`2026-11-29T23:15:04Z`).
    pub date: String,
    /// The git commit of the checkout compare was built from, when there is one
    /// (`-dirty` when it has uncommitted changes).
    pub git_commit: Option<String>,
    /// The kernel (`uname -r`), where it can be read.
    pub kernel: Option<String>,
    /// The CPU's model name, where it can be read.
    pub cpu_model: Option<String>,
    /// Logical CPUs this process may run on.
    pub cores: usize,
    /// Which CPUs compare and its servers may run on, and whether that is all of them.
    pub pinning: String,
    /// switchboard's version.
    pub version: &'static str,
    /// `release` or `debug`.
    pub build: &'static str,
    /// The command line, as typed (quoted where needed).
    pub command: String,
}

/// The manifest of this run.
pub fn collect(build: &'static str) -> Manifest {
    Manifest {
        date: utc_now(),
        git_commit: git_commit(),
        kernel: read("/proc/sys/kernel/osrelease"),
        cpu_model: read("/proc/cpuinfo").and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("model name"))?;
            Some(line.split_once(':')?.1.trim().to_string())
        }),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        pinning: pinning(),
        version: env!("CARGO_PKG_VERSION"),
        build,
        command: std::env::args()
            .map(|a| quote(&a))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

impl Manifest {
    /// The manifest as lines of text.
    pub fn lines(&self) -> String {
        let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "n/a".into());
        format!(
            "Run: {} | commit {} | kernel {} | {} ({} CPUs, {}) | switchboard {} {} build\n\
             Command: {}\n",
            self.date,
            or(&self.git_commit),
            or(&self.kernel),
            or(&self.cpu_model),
            self.cores,
            self.pinning,
            self.version,
            self.build,
            self.command
        )
    }
}

fn read(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

/// The commit of the checkout compare was built from, if it is still one.
fn git_commit() -> Option<String> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}

/// `Cpus_allowed_list` of this process (the servers inherit it): `not pinned (0-1)`
/// when that is every CPU, else `pinned to 0`.
fn pinning() -> String {
    let allowed = read("/proc/self/status").and_then(|s| {
        let line = s.lines().find(|l| l.starts_with("Cpus_allowed_list:"))?;
        Some(line.split_once(':')?.1.trim().to_string())
    });
    let online = read("/sys/devices/system/cpu/online");
    match (allowed, online) {
        (Some(a), Some(o)) if a == o => format!("not pinned, CPUs {a}"),
        (Some(a), _) => format!("pinned to CPUs {a}"),
        (None, _) => "unknown".into(),
    }
}

/// An argument as a shell would need it typed.
fn quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

fn utc(secs: u64) -> String {
    let time = i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0));
    time.unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known instants become the dates a calendar gives.
    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_795_993_204), "2026-11-29T23:00:04Z");
    }

    /// Arguments that a shell would split or expand are quoted.
    #[test]
    fn command_line_quoting() {
        assert_eq!(quote("--rate"), "--rate");
        assert_eq!(quote("py=python3 s.py {port}"), "'py=python3 s.py {port}'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    /// Every field is filled in where this machine shows it.
    #[test]
    fn collects_this_machine() {
        let m = collect("debug");
        assert!(m.cores >= 1 && m.date.ends_with('Z'));
        assert!(m.lines().contains("switchboard 0."), "{}", m.lines());
        if cfg!(target_os = "linux") {
            assert!(m.kernel.is_some() && m.pinning != "unknown", "{m:?}");
        }
    }
}
