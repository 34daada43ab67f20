//! Polling for a condition with a deadline, instead of sleeping a tuned time.

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 20 ms until it returns `Ok`, or fails with the last error after
/// `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) => {
                if tokio::time::Instant::now() >= deadline {
                    panic!("timed out after {timeout:?} waiting for {what}; last: {last}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
