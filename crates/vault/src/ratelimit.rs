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

/// Buckets keyed by a string (key id, IP).
#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter with one rate for every bucket.
    pub fn new(rate: Rate) -> Self {
        Self { rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token from `key`'s bucket if there is one.
    pub fn check(&self, key: &str) -> Decision {
        let now = Instant::now();
        let Rate { per_second, burst } = self.rate;
        let Ok(mut buckets) = self.buckets.lock() else {
            return Decision { allowed: true, limit: 0, remaining: 0, reset: 0, retry_after: 0 };
        };
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
        let full_after = if self.rate.per_second > 0.0 {
            Duration::from_secs_f64((self.rate.burst / self.rate.per_second).min(86_400.0))
        } else {
            Duration::from_secs(86_400)
        };
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
        let l = RateLimiter::new(Rate { per_second: 1.0, burst: 3.0 });
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
}
