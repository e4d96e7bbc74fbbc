//! Where "now" comes from. The rules take `now` as an argument; the services that call them
//! (the application layer, the license portal) read it from a [`Clock`], so tests can move time
//! instead of sleeping.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// Any `Fn() -> DateTime<Utc>` is a clock, so a host process can lend its own time source
/// (`Arc::new(move || host_clock.now())`) without an adapter type.
impl<F> Clock for F
where
    F: Fn() -> DateTime<Utc> + Send + Sync + 'static,
{
    fn now(&self) -> DateTime<Utc> {
        self()
    }
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests move by hand. [`ManualClock::new`] follows wall time plus an offset (so
/// timeouts inside the process still see time pass); [`ManualClock::at`] stands still at an
/// instant until it is moved. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    state: Arc<Mutex<Manual>>,
}

#[derive(Debug, Default)]
struct Manual {
    /// `None`: wall time; `Some`: a fixed instant.
    fixed: Option<DateTime<Utc>>,
    offset: Duration,
}

impl ManualClock {
    /// Wall time, until moved with [`ManualClock::advance`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock standing still at `at`.
    pub fn at(at: DateTime<Utc>) -> Self {
        let clock = Self::default();
        clock.set(at);
        clock
    }

    /// Moves the clock to `at` (backwards too); it then stands still there.
    pub fn set(&self, at: DateTime<Utc>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.fixed = Some(at);
        state.offset = Duration::zero();
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .offset += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.fixed.unwrap_or_else(Utc::now) + state.offset
    }
}
