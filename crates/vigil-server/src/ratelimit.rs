//! Rate limits for the human-facing routes: a token bucket per client address and one per
//! API key, answered with 429 and `Retry-After`.
//!
//! The maps are keyed by what clients send (their address, their key id), so each is
//! capped: when full, buckets that have refilled (indistinguishable from new ones) are
//! dropped first, then the least recently used one.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::{AppState, PeerInfo};

/// How many clients (and keys) are tracked at most.
pub const TRACKED_MAX: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets keyed by `K`: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub struct TokenBuckets<K> {
    rate: f64,
    burst: f64,
    cap: usize,
    map: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> TokenBuckets<K> {
    /// Buckets refilling at `rate` per second up to `burst`, tracking at most `cap` keys.
    pub fn new(rate: u32, burst: u32, cap: usize) -> Self {
        TokenBuckets {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            cap: cap.max(1),
            map: HashMap::new(),
        }
    }

    /// Takes one token for `key` at `now`; `Err(wait)` when none is left.
    pub fn take(&mut self, key: &K, now: Instant) -> Result<(), Duration> {
        if !self.map.contains_key(key) && self.map.len() >= self.cap {
            self.evict(now);
        }
        let (rate, burst) = (self.rate, self.burst);
        let b = self.map.entry(key.clone()).or_insert(Bucket { tokens: burst, at: now });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }

    fn evict(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.map.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst);
        if self.map.len() >= self.cap
            && let Some(k) = self.map.iter().min_by_key(|(_, b)| b.at).map(|(k, _)| k.clone())
        {
            self.map.remove(&k);
        }
    }

    /// Keys tracked.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The server's two limiters and a count of refusals.
#[derive(Debug)]
pub struct RateLimiter {
    clients: Mutex<TokenBuckets<IpAddr>>,
    keys: Mutex<TokenBuckets<String>>,
    /// Requests refused with 429.
    pub refused: AtomicU64,
}

impl RateLimiter {
    /// Limiters from the settings.
    pub fn new(api: &crate::config::ApiSettings) -> Self {
        RateLimiter {
            clients: Mutex::new(TokenBuckets::new(api.client_rate, api.client_burst, TRACKED_MAX)),
            keys: Mutex::new(TokenBuckets::new(api.key_rate, api.key_burst, TRACKED_MAX)),
            refused: AtomicU64::new(0),
        }
    }

    /// One request from `ip`.
    pub fn check_client(&self, ip: IpAddr) -> Result<(), ApiError> {
        let r = self.clients.lock().unwrap_or_else(|p| p.into_inner()).take(&ip, Instant::now());
        self.answer(r, "too many requests from this address")
    }

    /// One request with key `key_id`.
    pub fn check_key(&self, key_id: &str) -> Result<(), ApiError> {
        let r = self.keys.lock().unwrap_or_else(|p| p.into_inner()).take(&key_id.to_owned(), Instant::now());
        self.answer(r, "too many requests with this API key")
    }

    fn answer(&self, r: Result<(), Duration>, what: &str) -> Result<(), ApiError> {
        r.map_err(|wait| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            let secs = wait.as_secs().saturating_add(u64::from(wait.subsec_nanos() > 0));
            ApiError::rate_limited(secs, format!("{what}; retry after {} s", secs.max(1)))
        })
    }
}

/// Middleware: the per-address limit, before anything else is done for the request.
/// Requests without a peer (in-process tests) are not limited by address.
pub async fn by_client(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(peer) = req.extensions().get::<PeerInfo>()
        && let Err(e) = state.limiter.check_client(peer.addr.ip())
    {
        return e.into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_and_says_how_long_to_wait() {
        let mut b = TokenBuckets::new(2, 3, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            b.take(&1, t0).unwrap();
        }
        let wait = b.take(&1, t0).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500), "{wait:?}");
        b.take(&1, t0 + Duration::from_millis(500)).unwrap();
        assert!(b.take(&1, t0 + Duration::from_millis(500)).is_err());
        b.take(&2, t0).unwrap();
    }

    #[test]
    fn map_stays_bounded() {
        let mut b = TokenBuckets::new(1, 5, 100);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let _ = b.take(&i, t0 + Duration::from_micros(u64::from(i)));
        }
        assert!(b.len() <= 100);
        // A drained key survives eviction of refilled ones.
        let mut b = TokenBuckets::new(1, 2, 2);
        b.take(&"a", t0).unwrap();
        b.take(&"a", t0).unwrap();
        b.take(&"b", t0 + Duration::from_secs(60)).unwrap();
        b.take(&"c", t0 + Duration::from_secs(60)).unwrap();
        assert!(b.len() <= 2);
    }

    #[test]
    fn refusals_are_429_with_retry_after() {
        let api = crate::config::ApiSettings { client_rate: 1, client_burst: 1, ..Default::default() };
        let l = RateLimiter::new(&api);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        l.check_client(ip).unwrap();
        let e = l.check_client(ip).unwrap_err();
        assert_eq!(e.status, http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after, Some(1));
        assert_eq!(l.refused.load(Ordering::Relaxed), 1);
    }
}
