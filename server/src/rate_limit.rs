//! Keyed token buckets held in memory.
//!
//! Each node limits on its own, so with N nodes a client can reach N times the
//! configured rate; the limits exist to blunt guessing and flooding, not to
//! meter. Idle full buckets are dropped when the table grows, which bounds
//! memory.

use crate::config::Bucket;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PRUNE_ABOVE: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct State {
    tokens: f64,
    at: Instant,
}

/// A table of token buckets, one per key.
#[derive(Debug)]
pub struct RateLimiter<K> {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<K, State>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// Buckets of `bucket.burst` tokens refilled at `bucket.per_minute`.
    pub fn new(bucket: Bucket) -> Self {
        Self {
            capacity: f64::from(bucket.burst.max(1)),
            per_second: f64::from(bucket.per_minute) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how long until one is available.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            // A panic elsewhere poisoned the table; fail open rather than lock
            // everyone out.
            return Ok(());
        };
        if buckets.len() > PRUNE_ABOVE {
            let (capacity, rate) = (self.capacity, self.per_second);
            buckets.retain(|_, s| refill(s, now, capacity, rate) < capacity);
        }
        let state = buckets.entry(key.clone()).or_insert(State {
            tokens: self.capacity,
            at: now,
        });
        state.tokens = refill(state, now, self.capacity, self.per_second);
        state.at = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            Ok(())
        } else if self.per_second > 0.0 {
            Err(Duration::from_secs_f64(
                (1.0 - state.tokens) / self.per_second,
            ))
        } else {
            Err(Duration::from_secs(3600))
        }
    }
}

fn refill(state: &State, now: Instant, capacity: f64, per_second: f64) -> f64 {
    let elapsed = now.saturating_duration_since(state.at).as_secs_f64();
    (state.tokens + elapsed * per_second).min(capacity)
}

/// Whole seconds to put in `Retry-After` (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusal_then_refill() {
        let limiter = RateLimiter::new(Bucket {
            burst: 3,
            per_minute: 60,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(&"a", start).is_ok());
        }
        let wait = limiter.check_at(&"a", start).expect_err("bucket is empty");
        assert_eq!(retry_after_secs(wait), 1);
        assert!(
            limiter.check_at(&"b", start).is_ok(),
            "keys are independent"
        );
        assert!(
            limiter
                .check_at(&"a", start + Duration::from_secs(1))
                .is_ok()
        );
        assert!(
            limiter
                .check_at(&"a", start + Duration::from_secs(1))
                .is_err()
        );
    }
}
