//! Why an acquire gave no permits: the semaphore was closed ([`AcquireError`]), or, for a
//! `try_` acquire, closed or out of permits ([`TryAcquireError`]).

use std::fmt;

/// The error of [`Semaphore::try_acquire`](super::Semaphore::try_acquire) and its siblings (tokio's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryAcquireError {
    /// The semaphore was [closed](super::Semaphore::close).
    Closed,
    /// Not enough free permits, or others are queued first.
    NoPermits,
}

impl TryAcquireError {
    /// Whether the semaphore was closed.
    pub fn is_closed(&self) -> bool {
        *self == TryAcquireError::Closed
    }

    /// Whether there were not enough permits.
    pub fn is_no_permits(&self) -> bool {
        *self == TryAcquireError::NoPermits
    }
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryAcquireError::Closed => "semaphore closed",
            TryAcquireError::NoPermits => "no permits available without waiting",
        })
    }
}

impl std::error::Error for TryAcquireError {}

/// The error of [`Semaphore::acquire`](super::Semaphore::acquire) and its siblings: the semaphore was
/// [closed](super::Semaphore::close) (tokio's `AcquireError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquireError(pub(super) ());

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore closed")
    }
}

impl std::error::Error for AcquireError {}
