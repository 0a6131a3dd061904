//! Token-bucket rate limiting per API key and per client IP.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A limit: sustained requests per second and burst size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: f64,
}

/// Outcome of a check, with what the `RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Bucket size.
    pub limit: u64,
    /// Requests left now.
    pub remaining: u64,
    /// Seconds until the bucket is full again.
    pub reset: u64,
    /// Seconds to wait before retrying (when refused).
    pub retry_after: u64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The bucket that every new key shares while the limiter is full.
const OVERFLOW: &str = "\u{0}overflow";

/// Buckets keyed by a string (key id, client address), at most `capacity` of them: memory stays
/// bounded however many distinct addresses send requests. When the map is full, buckets that
/// have refilled completely (idle) are dropped; if it is still full, new keys share one
/// overflow bucket, so a flood from many addresses slows the newcomers down instead of
/// growing the map or resetting anybody's bucket.
#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    capacity: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter with one rate for every bucket and at most `capacity` buckets.
    pub fn new(rate: Rate, capacity: usize) -> Self {
        Self { rate, capacity: capacity.max(1), buckets: Mutex::new(HashMap::new()) }
    }

    /// Number of buckets held now.
    pub fn len(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn full_after(&self) -> Duration {
        if self.rate.per_second > 0.0 {
            Duration::from_secs_f64((self.rate.burst / self.rate.per_second).min(86_400.0))
        } else {
            Duration::from_secs(86_400)
        }
    }

    /// Takes one token from `key`'s bucket if there is one.
    pub fn check(&self, key: &str) -> Decision {
        let now = Instant::now();
        let Rate { per_second, burst } = self.rate;
        let Ok(mut buckets) = self.buckets.lock() else {
            return Decision { allowed: true, limit: 0, remaining: 0, reset: 0, retry_after: 0 };
        };
        let mut key = key;
        if !buckets.contains_key(key) && buckets.len() >= self.capacity {
            let full_after = self.full_after();
            buckets.retain(|_, b| now.duration_since(b.last) < full_after);
            if buckets.len() >= self.capacity {
                key = OVERFLOW;
            }
        }
        let bucket = match buckets.get_mut(key) {
            Some(b) => b,
            None => buckets.entry(key.to_owned()).or_insert(Bucket { tokens: burst, last: now }),
        };
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.last = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        let missing = burst - bucket.tokens;
        let secs = |x: f64| if per_second > 0.0 { (x / per_second).ceil().max(0.0) as u64 } else { u64::MAX };
        Decision {
            allowed,
            limit: burst as u64,
            remaining: bucket.tokens.floor().max(0.0) as u64,
            reset: secs(missing),
            retry_after: if allowed { 0 } else { secs(1.0 - bucket.tokens).max(1) },
        }
    }

    /// Drops buckets idle long enough to be full again.
    pub fn prune(&self) {
        let full_after = self.full_after();
        if let Ok(mut b) = self.buckets.lock() {
            b.retain(|_, bucket| bucket.last.elapsed() < full_after);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refuses_after_burst() {
        let l = RateLimiter::new(Rate { per_second: 1.0, burst: 3.0 }, 100);
        assert!(l.check("a").allowed);
        assert!(l.check("a").allowed);
        let d = l.check("a");
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        let d = l.check("a");
        assert!(!d.allowed);
        assert!(d.retry_after >= 1);
        assert!(l.check("b").allowed);
    }

    #[test]
    fn the_map_is_bounded_and_newcomers_share_the_overflow_bucket() {
        let l = RateLimiter::new(Rate { per_second: 1.0, burst: 2.0 }, 10);
        for i in 0..1000 {
            l.check(&format!("k{i}"));
        }
        assert!(l.len() <= 11, "{}", l.len());
        // The first ten keep their own buckets.
        assert!(l.check("k0").allowed);
        // Newcomers share one bucket of burst 2: it is empty by now.
        assert!(!l.check("k5000").allowed);
    }
}
