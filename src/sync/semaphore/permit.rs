//! What holding permits looks like: [`SemaphorePermit`] (borrowing its semaphore) and
//! [`OwnedSemaphorePermit`] (holding an `Rc` of it); dropping either gives the permits back.

use std::fmt;
use std::rc::Rc;

use super::Semaphore;

/// `n` permits of a [`Semaphore`], returned to it when dropped.
#[must_use = "the permits are released at once if the permit is not kept"]
pub struct SemaphorePermit<'a> {
    /// Where the permits go back to.
    pub(super) sem: &'a Semaphore,
    /// How many this value holds (0 after `forget`).
    pub(super) permits: usize,
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}

impl SemaphorePermit<'_> {
    /// Number of permits held.
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// Keeps the permits out of the semaphore for good (they are not returned on drop).
    ///
    /// ```
    /// let sem = executor::sync::Semaphore::new(3);
    /// sem.try_acquire_many(2).unwrap().forget();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(mut self) {
        self.permits = 0;
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.permits != 0 {
            self.sem.release(self.permits);
        }
    }
}

/// `n` permits of an `Rc`'d [`Semaphore`], returned to it when dropped; holds no borrow (made
/// by [`Semaphore::acquire_owned`] and its siblings).
#[must_use = "the permits are released at once if the permit is not kept"]
pub struct OwnedSemaphorePermit {
    /// Where the permits go back to.
    pub(super) sem: Rc<Semaphore>,
    /// How many this value holds (0 after `forget`).
    pub(super) permits: usize,
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}

impl OwnedSemaphorePermit {
    /// Number of permits held.
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// The semaphore the permits belong to.
    pub fn semaphore(&self) -> &Rc<Semaphore> {
        &self.sem
    }

    /// Keeps the permits out of the semaphore for good (they are not returned on drop).
    pub fn forget(mut self) {
        self.permits = 0;
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        if self.permits != 0 {
            self.sem.release(self.permits);
        }
    }
}
