//! [`OnceCell`]: a value initialised once, by an async initialiser that runs once.
//!
//! # Implementation
//! The value lives in a `std::cell::OnceCell`; a one-permit [`Semaphore`] decides who may run
//! the initialiser. A caller that finds no value takes the permit (in FIFO order) and, holding
//! it, checks again and runs its initialiser:
//! - on success it stores the value, keeps the permit for good and opens the semaphore wide
//!   (`OPEN` permits), which wakes every queued caller at once to find the value;
//! - on failure (error, panic, or its future dropped) the permit is dropped with the caller's
//!   future and goes to the next queued caller, which runs *its* initialiser.
//!
//! So exactly one initialiser ever completes, and initialisers never overlap.

use std::cell::OnceCell as Slot;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;

use super::semaphore::{MAX_PERMITS, Semaphore, SemaphorePermit};

/// Permits added once the value is set, so that every queued caller is granted at once (each
/// takes one, sees the value and gives it back, so the count never grows past this).
const OPEN: usize = MAX_PERMITS / 2;

/// A cell written once, by the first of its callers whose async initialiser completes.
///
/// [`get_or_init`](Self::get_or_init) is the run-once initialiser: concurrent callers wait for
/// the one initialisation in progress (woken once, when it ends, no polling); if it fails, panics
/// or is cancelled (its future dropped), the next waiting caller runs its own initialiser. Callers
/// take their turn in arrival order. `!Send`: share it between the loop's tasks with an `Rc`.
///
/// ```
/// use std::rc::Rc;
/// use executor::sync::OnceCell;
///
/// executor::block_on(async {
///     let config: Rc<OnceCell<String>> = Rc::new(OnceCell::new());
///     let tasks: Vec<_> = (0..3)
///         .map(|i| {
///             let config = config.clone();
///             executor::spawn(async move {
///                 config
///                     .get_or_init(|| async move {
///                         executor::yield_now().await; // e.g. read a file
///                         format!("loaded by caller {i}")
///                     })
///                     .await
///                     .clone()
///             })
///         })
///         .collect();
///     for t in tasks {
///         assert_eq!(t.await.unwrap(), "loaded by caller 0");
///     }
/// });
/// ```
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<executor::sync::OnceCell<u32>>();
/// ```
pub struct OnceCell<T> {
    /// The value; once set, it never changes (except through `&mut self`).
    value: Slot<T>,
    /// One permit while the value is unset: held by the caller running its initialiser. Once the
    /// value is set, that permit is forgotten and `OPEN` permits stand in its place.
    sem: Semaphore,
}

impl<T> Default for OnceCell<T> {
    fn default() -> Self {
        OnceCell::new()
    }
}

impl<T> From<T> for OnceCell<T> {
    fn from(value: T) -> Self {
        OnceCell {
            value: Slot::from(value),
            sem: Semaphore::new(1),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnceCell")
            .field("value", &self.value.get())
            .finish()
    }
}

impl<T> OnceCell<T> {
    /// An empty cell.
    pub const fn new() -> Self {
        OnceCell {
            value: Slot::new(),
            sem: Semaphore::new(1),
        }
    }

    /// The value, if it is set.
    pub fn get(&self) -> Option<&T> {
        self.value.get()
    }

    /// Whether the value is set.
    pub fn initialized(&self) -> bool {
        self.value.get().is_some()
    }

    /// Sets the value, unless it is set already or an initialiser is running.
    ///
    /// ```
    /// use executor::sync::{OnceCell, SetError};
    /// let cell = OnceCell::new();
    /// assert!(cell.set(1).is_ok());
    /// assert_eq!(cell.set(2), Err(SetError::AlreadyInitialized(2)));
    /// assert_eq!(cell.get(), Some(&1));
    /// ```
    pub fn set(&self, value: T) -> Result<(), SetError<T>> {
        if self.initialized() {
            return Err(SetError::AlreadyInitialized(value));
        }
        match self.sem.try_acquire() {
            Ok(permit) => {
                self.complete(permit, value);
                Ok(())
            }
            Err(_) => Err(SetError::Initializing(value)),
        }
    }

    /// The value, initialised by `init` if no other caller has done it.
    ///
    /// If another caller's initialiser is running, waits for it; if that one fails, panics or
    /// is cancelled, the next caller in line runs its own. Calling `get_or_init` on the same
    /// cell from inside `init` waits for itself forever.
    ///
    /// ```
    /// executor::block_on(async {
    ///     let cell = executor::sync::OnceCell::new();
    ///     assert_eq!(*cell.get_or_init(|| async { 1 }).await, 1);
    ///     assert_eq!(*cell.get_or_init(|| async { 2 }).await, 1);
    /// });
    /// ```
    pub async fn get_or_init<F, Fut>(&self, init: F) -> &T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let infallible = move || async move { Ok::<T, Infallible>(init().await) };
        match self.get_or_try_init(infallible).await {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }

    /// Like [`get_or_init`](Self::get_or_init), with an initialiser that can fail: on `Err`, the
    /// error is returned to this caller and the next caller in line runs its initialiser.
    ///
    /// ```
    /// executor::block_on(async {
    ///     let cell = executor::sync::OnceCell::new();
    ///     assert_eq!(cell.get_or_try_init(|| async { Err("offline") }).await, Err("offline"));
    ///     assert_eq!(cell.get_or_try_init(|| async { Ok::<_, &str>(3) }).await, Ok(&3));
    /// });
    /// ```
    pub async fn get_or_try_init<E, F, Fut>(&self, init: F) -> Result<&T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(v) = self.value.get() {
            return Ok(v);
        }
        let Ok(permit) = self.sem.acquire().await else {
            unreachable!("a OnceCell's semaphore is never closed")
        };
        // Woken because the value was set (the permit is then one of the `OPEN` ones).
        if let Some(v) = self.value.get() {
            return Ok(v);
        }
        // If `init` errs, panics or is dropped, `permit` drops too and the next caller is up.
        let value = init().await?;
        Ok(self.complete(permit, value))
    }

    /// Stores the value (the caller holds the initialiser's permit) and lets every waiter in.
    fn complete(&self, permit: SemaphorePermit<'_>, value: T) -> &T {
        permit.forget();
        let stored = self.value.set(value);
        debug_assert!(stored.is_ok(), "only the permit holder sets the value");
        self.sem.add_permits(OPEN);
        self.value.get().expect("the value was just set")
    }

    /// Takes the value out, leaving the cell empty (and ready to be initialised again).
    pub fn take(&mut self) -> Option<T> {
        // `&mut self`: no caller is waiting or initialising, so a fresh semaphore loses nobody.
        self.sem = Semaphore::new(1);
        self.value.take()
    }

    /// Consumes the cell and returns the value, if set.
    pub fn into_inner(self) -> Option<T> {
        self.value.into_inner()
    }
}

/// The error of [`OnceCell::set`]; it gives the value back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetError<T> {
    /// The cell already holds a value.
    AlreadyInitialized(T),
    /// An initialiser is running (or was handed the turn to run).
    Initializing(T),
}

impl<T> SetError<T> {
    /// The value that was not stored.
    pub fn into_inner(self) -> T {
        match self {
            SetError::AlreadyInitialized(v) | SetError::Initializing(v) => v,
        }
    }
}

impl<T> fmt::Display for SetError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetError::AlreadyInitialized(_) => f.write_str("the cell is already initialised"),
            SetError::Initializing(_) => f.write_str("the cell is being initialised"),
        }
    }
}

impl<T: fmt::Debug> std::error::Error for SetError<T> {}
