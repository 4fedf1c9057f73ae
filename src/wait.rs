//! Bounded waits, and the notice a caller can ask for when one is long.
//!
//! Every wait of the store has a limit: a lock held by another process
//! (the lock timeout), a keychain call that does not return (the keychain
//! timeout). A wait that lasts longer than a moment is worth saying, or a
//! user stares at a silent terminal for 30 s: [`StoreBuilder::wait_notice`]
//! registers a function that is called once per wait that lasts longer
//! than a given time, with what it waits for and for how long at most.
//!
//! [`StoreBuilder::wait_notice`]: crate::StoreBuilder::wait_notice

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What a long wait is waiting for (see [`StoreBuilder::wait_notice`](crate::StoreBuilder::wait_notice)).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum WaitFor<'a> {
    /// A lock file another process holds (a refresh, a save, a removal).
    Lock(&'a Path),
    /// A keychain call, for the backend named (a locked keyring waiting on
    /// a prompt, a stalled D-Bus service).
    Keychain(&'a str),
}

/// One long wait: what it waits for, and the longest it will wait in all
/// (after that, the call fails with its timeout error).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Waiting<'a> {
    /// What it waits for.
    pub what: WaitFor<'a>,
    /// The wait's limit, counted from its start.
    pub limit: Duration,
}

impl std::fmt::Display for Waiting<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.limit.as_secs_f64();
        match self.what {
            WaitFor::Lock(path) => write!(
                f,
                "waiting for a lock another process holds ({}), for at most {secs} s",
                path.display()
            ),
            WaitFor::Keychain(backend) => write!(
                f,
                "waiting for the {backend} keychain to answer, for at most {secs} s"
            ),
        }
    }
}

/// The function called for a long wait.
pub(crate) type NoticeFn = dyn Fn(&Waiting<'_>) + Send + Sync;

/// A notice function and after how long a wait is long.
#[derive(Clone)]
pub(crate) struct Notifier {
    pub after: Duration,
    pub f: Arc<NoticeFn>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("after", &self.after)
            .finish()
    }
}

/// A wait's limit, and who to tell when it is long.
#[derive(Clone)]
pub(crate) struct Patience {
    pub limit: Duration,
    notifier: Option<Notifier>,
}

impl std::fmt::Debug for Patience {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patience")
            .field("limit", &self.limit)
            .field("notice_after", &self.notifier.as_ref().map(|n| n.after))
            .finish()
    }
}

impl Patience {
    pub(crate) fn new(limit: Duration, notifier: Option<Notifier>) -> Patience {
        Patience { limit, notifier }
    }

    /// The same notice, another limit.
    pub(crate) fn within(&self, limit: Duration) -> Patience {
        Patience {
            limit,
            notifier: self.notifier.clone(),
        }
    }

    /// When a wait that started `waited` ago is long, and nobody has been
    /// told yet (`*told` false): tell, once. A wait that cannot last until
    /// the notice time is never reported.
    pub(crate) fn tell_if_long(&self, waited: Duration, told: &mut bool, what: WaitFor<'_>) {
        if let Some(n) = &self.notifier
            && !*told
            && waited >= n.after
            && self.limit > n.after
        {
            *told = true;
            (n.f)(&Waiting {
                what,
                limit: self.limit,
            });
        }
    }

    /// The first part of a wait that ends in a notice (the whole limit if
    /// there is no notice, or it would come after the limit).
    pub(crate) fn until_notice(&self) -> Duration {
        match &self.notifier {
            Some(n) if n.after < self.limit => n.after,
            _ => self.limit,
        }
    }
}
