//! What a check works with: the role, a fresh server, the log, and the few steps
//! most checks share (a greeted connection, retried while a single-client server is
//! still busy; blaming a failure on the event that caused it).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{CONNECT, REPLY};
use crate::cli::{Grading, Role};
use crate::conn::{Conn, Reply};
use crate::outcome::{fail, Log, Verdict};
use crate::server::ServerProcess;

/// What a check works with: the role, a freshly started server, and its log.
pub struct Ctx<'a> {
    /// The coursework server it is graded as.
    pub role: Role,
    /// The role, the mode and the console.
    pub grading: Grading,
    /// The command that started the server, `{port}` not yet replaced.
    pub command: &'a str,
    /// How long a start may take.
    pub start_timeout: Duration,
    /// The server, started for this check alone.
    pub server: &'a mut ServerProcess,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The check's steps.
    pub log: &'a Log,
}

impl<'a> Ctx<'a> {
    /// The answer to `Hi`.
    pub fn greeting(&self) -> &'static [u8] {
        self.grading.greeting()
    }

    /// Whether lines come back byte for byte (echo mode).
    pub fn echo(&self) -> bool {
        self.grading.echo()
    }

    /// A new connection named `name`.
    pub fn connect(&self, name: &str) -> Result<Conn<'a>, Verdict> {
        Conn::open(self.log, name, self.addr, CONNECT)
    }

    /// A new connection that has said `Hi` and got the role's greeting.
    pub fn greeted(&self, name: &str, cause: &str) -> Result<Conn<'a>, Verdict> {
        let mut conn = self.connect(name)?;
        conn.send(b"Hi\n")?;
        conn.expect(self.greeting(), REPLY, self.echo(), cause)?;
        Ok(conn)
    }

    /// Like [`Ctx::greeted`], but a connection turned away (an `ERR` line, a close or
    /// a reset: a single-client server still busy with the one before) is retried
    /// until `within` has passed.
    pub fn greeted_retrying(
        &self,
        name: &str,
        within: Duration,
        cause: &str,
    ) -> Result<Conn<'a>, Verdict> {
        let deadline = Instant::now() + within;
        loop {
            let mut conn = self.connect(name)?;
            conn.send(b"Hi\n")?;
            self.log.note(
                name,
                format!("expect {}", crate::outcome::quote(self.greeting())),
            );
            let reply = conn.next(REPLY);
            let turned_away = match &reply {
                Reply::Line(line) if line.trim_ascii_end() == self.greeting() => return Ok(conn),
                Reply::Line(line) => line.starts_with(b"ERR"),
                Reply::Closed(rest) | Reply::Silent(rest)
                    if crate::conn::unterminated(rest, self.greeting()) =>
                {
                    return Err(crate::conn::no_line_end(name, self.greeting()));
                }
                Reply::Closed(_) | Reply::Reset => true,
                Reply::Silent(_) => false,
            };
            if !turned_away || Instant::now() >= deadline {
                let seen = crate::conn::describe(&reply, REPLY);
                return Err(fail(format!("{name} said Hi and {seen}"), cause));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs `steps`; a failure among them is put down to `cause` (noting the
    /// server's exit, if it died), since the event before them is what is tested.
    pub fn after(
        &mut self,
        cause: &str,
        steps: impl FnOnce(&mut Ctx<'a>) -> Result<(), Verdict>,
    ) -> Result<(), Verdict> {
        match steps(self) {
            Err(Verdict::Fail { mut message, .. }) => {
                if let Some(status) = self.server.exit_status() {
                    self.log.note("server", format!("exited: {status}"));
                    message.push_str(&format!("; the server had exited ({status})"));
                }
                Err(fail(message, cause))
            }
            other => other,
        }
    }

    /// Fails unless every process of the server is gone within `within`.
    pub fn gone_within(&mut self, within: Duration, cause: &str) -> Result<(), Verdict> {
        let deadline = Instant::now() + within;
        while self.server.running() {
            if Instant::now() >= deadline {
                self.log
                    .note("server", format!("still running after {within:?}"));
                return Err(fail(
                    format!("the server was still running {within:?} later"),
                    cause,
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.log.note("server", "gone");
        Ok(())
    }

    /// Fails unless the server process is still running.
    pub fn alive(&mut self, cause: &str) -> Result<(), Verdict> {
        match self.server.exit_status() {
            None => Ok(()),
            Some(status) => {
                self.log.note("server", format!("exited: {status}"));
                Err(fail(format!("the server exited ({status})"), cause))
            }
        }
    }
}
