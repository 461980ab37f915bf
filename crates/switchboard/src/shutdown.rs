//! The stop signal that the caller hands to a strategy.
//!
//! Ctrl-C, SIGTERM and the console's `/quit` all call [`Shutdown::trigger`].
//! A strategy that may be asleep registers a hook that wakes it: the poll loop
//! wakes its `mio::Waker`, a blocking `accept()` is woken by connecting to it.
//!
//! The signal fires once; triggering it again does nothing. What to do when a
//! graceful stop hangs (a second Ctrl-C, a deadline) is the process's
//! business, not the library's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

type Hook = Box<dyn Fn() + Send>;

/// A one-way, clonable "stop now" flag with wake-up hooks.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    triggered: AtomicBool,
    hooks: Mutex<Vec<Hook>>,
}

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the signal (once; later calls do nothing) and runs the hooks.
    pub fn trigger(&self) {
        if self.inner.triggered.swap(true, Ordering::SeqCst) {
            return;
        }
        let hooks = self
            .inner
            .hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for hook in hooks.iter() {
            hook();
        }
    }

    /// Whether the signal has fired.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Runs `hook` when the signal fires — at once if it already has.
    pub fn on_trigger(&self, hook: impl Fn() + Send + 'static) {
        let mut hooks = self
            .inner
            .hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Checked under the lock so a concurrent trigger cannot miss the hook.
        if self.is_triggered() {
            hook();
        } else {
            hooks.push(Box::new(hook));
        }
    }
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}
