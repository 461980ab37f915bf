//! What the sans-I/O protocol costs per line, without the kernel: framing,
//! the session's checks and the mode, on the inputs `compare`'s echo rows
//! send. The user-space part of a server's CPU per message, measured where
//! no other process and no system call can blur it.
//!
//! ```text
//! cargo bench -p switchboard --bench session     # ~5 s
//! cargo test -p switchboard --bench session      # a smoke run of the same code
//! ```
//!
//! Each case runs for a fixed time in five rounds and reports the fastest
//! round's nanoseconds per line (the others were interrupted more).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::mode::{Echo, Mode, NoOperator, Reverse};
use switchboard::session::Context;
use switchboard::{ClientId, Limits, Session};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let round = if full {
        Duration::from_millis(200)
    } else {
        Duration::from_millis(5)
    };
    let line = |size: usize| [vec![b'x'; size], b"\n".to_vec()].concat();
    let echo: Arc<dyn Mode> = Arc::new(Echo);
    let reverse: Arc<dyn Mode> = Arc::new(Reverse);
    // The last field: whole lines first go by `passes_through`, as the
    // event loop and thread-per-client feed echo; those bytes go back to
    // the client from the read buffer, uncopied.
    let x32 = line(64).repeat(32);
    let cases = [
        ("echo, 64 B lines x32 per read", &echo, &x32, 32, false),
        ("  the same, passed through", &echo, &x32, 32, true),
        (
            "echo, one 16 KiB line per read",
            &echo,
            &line(16 * 1024),
            1,
            false,
        ),
        (
            "  the same, passed through",
            &echo,
            &line(16 * 1024),
            1,
            true,
        ),
        ("reverse, 64 B lines x32", &reverse, &x32, 32, false),
    ];
    println!("{:<34} {:>10}", "case", "ns/line");
    for (name, mode, input, lines, through) in cases {
        let limits = Limits::default();
        let context = Context::new(&**mode, &limits, &NoOperator);
        let mut session = Session::new(ClientId(1));
        let mut out = Vec::with_capacity(input.len());
        let mut best = f64::MAX;
        let mut answered = 0;
        for _ in 0..5 {
            let (mut reads, started) = (0u64, Instant::now());
            while started.elapsed() < round {
                for _ in 0..64 {
                    out.clear();
                    let input = black_box(&input[..]);
                    let echoed = match through {
                        true => session.passes_through(&context, input),
                        false => 0,
                    };
                    black_box(session.on_bytes(&context, &input[echoed..], &mut out));
                    answered = echoed + out.len();
                }
                reads += 64;
            }
            let ns = started.elapsed().as_nanos() as f64 / (reads * lines as u64) as f64;
            best = best.min(ns);
        }
        assert_eq!(answered, input.len(), "{name}: every line answered");
        println!("{name:<34} {best:>10.1}");
    }
}
