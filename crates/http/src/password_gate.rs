//! Password checks are the one thing an unauthenticated client can make expensive: each argon2
//! verification takes ~19 MiB and a core for tens of milliseconds. [`HashGate`] bounds them.

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use argon2::Block;
use tallyman_app::credentials::verify_password_with_memory;
use tokio::sync::Semaphore;

/// Bounds password verification: at most `slots` argon2 runs at once (each needs ~19 MiB and a
/// core for tens of milliseconds), on the blocking pool, each with working memory taken from a
/// pool of at most `slots` buffers. A login that cannot get a slot within `wait` is refused
/// with [`Busy`], so a flood of logins costs neither memory nor unbounded queueing.
pub struct HashGate {
    permits: Arc<Semaphore>,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    wait: StdDuration,
}

/// No hashing slot came free in time.
#[derive(Debug)]
pub struct Busy;

impl HashGate {
    pub fn new(slots: usize, wait: StdDuration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(slots.max(1))),
            memory: Arc::default(),
            wait,
        }
    }

    /// One slot per core.
    pub fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores, StdDuration::from_secs(2))
    }

    /// Verifies `password` against `phc` once a slot is free.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, Busy> {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        let pool = self.memory.clone();
        let password = password.to_string();
        let phc = phc.to_string();
        // The permit and the buffer live in the blocking task, so a client that goes away
        // mid-verification neither frees its slot early nor loses the buffer.
        let task = tokio::task::spawn_blocking(move || {
            let mut memory = pool
                .lock()
                .map(|mut free| free.pop())
                .ok()
                .flatten()
                .unwrap_or_default();
            let matches = verify_password_with_memory(&password, &phc, &mut memory);
            if let Ok(mut free) = pool.lock() {
                free.push(memory);
            }
            drop(permit);
            matches
        });
        Ok(task.await.unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tallyman_app::credentials::dummy_hash;

    #[tokio::test]
    async fn the_hash_gate_refuses_when_no_slot_frees_in_time() {
        let gate = HashGate::new(1, StdDuration::from_millis(50));
        let held = gate.permits.clone().acquire_owned().await.unwrap();
        assert!(gate.verify("x", dummy_hash()).await.is_err());
        drop(held);
        assert_eq!(gate.verify("x", dummy_hash()).await.ok(), Some(false));
    }
}
