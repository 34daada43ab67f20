//! Token buckets, one per key, independent of any proxy.

use std::collections::HashMap;

/// A bucket's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// Tokens a full bucket holds (the burst).
    pub capacity: f64,
    /// Tokens added per second.
    pub refill_per_second: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    tokens: f64,
    updated_ms: u64,
}

/// What a request is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on; this many whole tokens are left.
    Allowed {
        /// Tokens left after this request.
        remaining: u64,
    },
    /// Over the limit; retry after this many seconds.
    Limited {
        /// Whole seconds until a token is back (at least 1).
        retry_after_s: u64,
    },
}

/// Buckets by key, at most `max_keys` of them.
#[derive(Debug, Clone)]
pub struct Buckets {
    shape: Shape,
    max_keys: usize,
    buckets: HashMap<String, Bucket>,
}

impl Buckets {
    /// No buckets yet.
    pub fn new(shape: Shape, max_keys: usize) -> Self {
        Self {
            shape,
            max_keys,
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `key` at `now_ms`.
    pub fn take(&mut self, key: &str, now_ms: u64) -> Verdict {
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.max_keys {
            self.forget_full(now_ms);
        }
        let shape = self.shape;
        let bucket = self.buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: shape.capacity,
            updated_ms: now_ms,
        });
        refill(bucket, shape, now_ms);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Verdict::Allowed {
                remaining: bucket.tokens.floor() as u64,
            }
        } else {
            let missing = 1.0 - bucket.tokens;
            let seconds = if shape.refill_per_second > 0.0 {
                (missing / shape.refill_per_second).ceil()
            } else {
                3600.0
            };
            Verdict::Limited {
                retry_after_s: (seconds as u64).max(1),
            }
        }
    }

    /// Drops buckets that have refilled completely (they are the same as a new one); if none
    /// has, drops the one idle longest.
    fn forget_full(&mut self, now_ms: u64) {
        let shape = self.shape;
        self.buckets.retain(|_, bucket| {
            refill(bucket, shape, now_ms);
            bucket.tokens < shape.capacity
        });
        if self.buckets.len() >= self.max_keys
            && let Some(oldest) = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.updated_ms)
                .map(|(k, _)| k.clone())
        {
            self.buckets.remove(&oldest);
        }
    }

    /// Keys currently tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

fn refill(bucket: &mut Bucket, shape: Shape, now_ms: u64) {
    let elapsed_s = now_ms.saturating_sub(bucket.updated_ms) as f64 / 1000.0;
    bucket.tokens = (bucket.tokens + elapsed_s * shape.refill_per_second).min(shape.capacity);
    bucket.updated_ms = bucket.updated_ms.max(now_ms);
}

#[cfg(test)]
mod tests;
