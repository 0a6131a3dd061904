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

/// GCRA in one Redis round trip, atomic because it is a script. `KEYS[1]`: the bucket;
/// `ARGV[1]`: emission interval (µs per request), `ARGV[2]`: burst. Uses the server's clock, so
/// instances with skewed clocks still agree. Returns `{allowed, remaining, retry_after_ms,
/// reset_ms}`.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tolerance = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now <= tolerance then
  redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
  return {1, math.floor((tolerance - (new_tat - now)) / interval), 0, math.ceil((new_tat - now) / 1000)}
end
return {0, 0, math.ceil((new_tat - now - tolerance) / 1000), math.ceil((tat - now) / 1000)}
";

/// Counts one authentication failure in a one-minute window (`KEYS[1]`); returns the count.
const COUNT_FAILURE: &str =
    "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('EXPIRE', KEYS[1], 60) end return n";

/// Rate-limit buckets shared by every vault instance through Redis (`--redis-url`). One
/// script call per check. A failed or slow call (Redis down) returns `None`: the caller falls
/// back to its own per-instance limiter (fail-open to local limits, logged and counted), never
/// to an error answer. After a failure the limiter stops asking Redis for [`BREAKER_OPEN`]
/// (a circuit breaker): while Redis is down, requests do not each wait out
/// [`SHARED_TIMEOUT`] first; the first call after that period tries Redis again.
pub struct SharedLimiter {
    manager: redis::aio::ConnectionManager,
    script: redis::Script,
    failure_script: redis::Script,
    prefix: String,
    /// Checks that fell back to the local limiter because Redis did not answer.
    pub failures: std::sync::atomic::AtomicU64,
    /// Checks that did not ask Redis because the breaker was open.
    pub skipped: std::sync::atomic::AtomicU64,
    /// Milliseconds after `epoch` until which Redis is not asked (0: closed).
    open_until_ms: std::sync::atomic::AtomicU64,
    epoch: Instant,
}

impl std::fmt::Debug for SharedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimiter").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// How long a shared check may take before the local limiter decides instead.
pub const SHARED_TIMEOUT: Duration = Duration::from_millis(50);

/// How long the limiter leaves Redis alone after a failed call.
pub const BREAKER_OPEN: Duration = Duration::from_secs(1);

impl SharedLimiter {
    /// A limiter on the Redis at `url`; connects lazily (a Redis that is down at start-up is
    /// not an error). `prefix` namespaces the keys (several vaults on one Redis).
    ///
    /// # Errors
    /// The URL is not a Redis URL.
    pub fn new(url: &str, prefix: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|_| "the Redis URL is not valid".to_owned())?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(SHARED_TIMEOUT * 4))
            .set_response_timeout(Some(SHARED_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let manager = client.get_connection_manager_lazy(config).map_err(|e| e.to_string())?;
        Ok(Self {
            manager,
            script: redis::Script::new(GCRA),
            failure_script: redis::Script::new(COUNT_FAILURE),
            prefix: prefix.to_owned(),
            failures: std::sync::atomic::AtomicU64::new(0),
            skipped: std::sync::atomic::AtomicU64::new(0),
            open_until_ms: std::sync::atomic::AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether Redis is being left alone after a recent failure (the call is counted).
    fn breaker_open(&self) -> bool {
        let open = self.now_ms() < self.open_until_ms.load(std::sync::atomic::Ordering::Relaxed);
        if open {
            self.skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        open
    }

    /// Takes one request from the shared bucket `name:key` with `rate`; `None` if Redis did not
    /// answer in time.
    pub async fn check(&self, name: &str, key: &str, rate: Rate) -> Option<Decision> {
        let interval_us =
            if rate.per_second > 0.0 { (1_000_000.0 / rate.per_second).ceil() as u64 } else { u64::MAX / 4 };
        let burst = rate.burst.max(1.0) as u64;
        if self.breaker_open() {
            return None;
        }
        let mut manager = self.manager.clone();
        let mut invocation = self.script.key(format!("{}:{name}:{key}", self.prefix));
        invocation.arg(interval_us).arg(burst);
        let call = invocation.invoke_async::<(i64, i64, i64, i64)>(&mut manager);
        match tokio::time::timeout(SHARED_TIMEOUT, call).await {
            Ok(Ok((allowed, remaining, retry_ms, reset_ms))) => {
                let secs = |ms: i64| u64::try_from(ms).unwrap_or(0).div_ceil(1000);
                Some(Decision {
                    allowed: allowed == 1,
                    limit: burst,
                    remaining: u64::try_from(remaining).unwrap_or(0),
                    reset: secs(reset_ms),
                    retry_after: if allowed == 1 { 0 } else { secs(retry_ms).max(1) },
                })
            }
            Ok(Err(e)) => {
                self.note_failure(&e.to_string());
                None
            }
            Err(_) => {
                self.note_failure("timed out");
                None
            }
        }
    }

    /// Counts an authentication failure from `client` in a one-minute window shared by every
    /// instance; the count so far, or `None` if Redis did not answer.
    pub async fn count_failure(&self, client: &str) -> Option<u64> {
        if self.breaker_open() {
            return None;
        }
        let mut manager = self.manager.clone();
        let invocation = self.failure_script.key(format!("{}:authfail:{client}", self.prefix));
        let call = invocation.invoke_async::<u64>(&mut manager);
        match tokio::time::timeout(SHARED_TIMEOUT, call).await {
            Ok(Ok(n)) => Some(n),
            Ok(Err(e)) => {
                self.note_failure(&e.to_string());
                None
            }
            Err(_) => {
                self.note_failure("timed out");
                None
            }
        }
    }

    fn note_failure(&self, why: &str) {
        let until = self.now_ms().saturating_add(u64::try_from(BREAKER_OPEN.as_millis()).unwrap_or(u64::MAX));
        self.open_until_ms.store(until, std::sync::atomic::Ordering::Relaxed);
        let n = self.failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        // Logged on the first failure and then every 1000th, so an outage does not flood logs.
        if n == 1 || n % 1000 == 0 {
            tracing::warn!(failures = n, error = why, "shared rate limit unavailable; using this instance's limits");
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

    #[tokio::test]
    async fn an_unanswering_redis_is_left_alone_until_the_breaker_closes() {
        use std::sync::atomic::Ordering::Relaxed;
        // Nothing listens on port 1: every call to this Redis fails.
        let l = SharedLimiter::new("redis://127.0.0.1:1", "t").unwrap();
        let rate = Rate { per_second: 1.0, burst: 1.0 };
        assert!(l.check("key", "a", rate).await.is_none());
        assert_eq!((l.failures.load(Relaxed), l.skipped.load(Relaxed)), (1, 0));
        for _ in 0..10 {
            assert!(l.check("key", "a", rate).await.is_none());
        }
        assert!(l.count_failure("c").await.is_none());
        assert_eq!(l.failures.load(Relaxed), 1, "no call reached Redis while the breaker was open");
        assert_eq!(l.skipped.load(Relaxed), 11);
        // Once the open period is over, the next call tries Redis again.
        l.open_until_ms.store(0, Relaxed);
        assert!(l.check("key", "a", rate).await.is_none());
        assert_eq!((l.failures.load(Relaxed), l.skipped.load(Relaxed)), (2, 11));
    }
}
