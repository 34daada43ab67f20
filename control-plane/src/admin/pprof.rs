//! `/debug/pprof/profile?seconds=N`: a CPU profile of the control plane in pprof's protobuf
//! format, as Go services serve with `net/http/pprof` (`go tool pprof` and `pprof` read it).
//! Sampling runs at 99 Hz for the asked time (1 to 60 s, default 10); one profile at a time.
//! With an admin token set, it needs the token, like every admin endpoint.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use pprof::protos::Message;
use serde::Deserialize;

/// The longest profile served.
const MAX_SECONDS: u64 = 60;
/// Samples per second (not 100, so as not to beat in step with periodic work).
const FREQUENCY: i32 = 99;

static PROFILING: AtomicBool = AtomicBool::new(false);

#[derive(Debug, Deserialize)]
pub(super) struct ProfileQuery {
    seconds: Option<u64>,
}

pub(super) async fn profile(Query(query): Query<ProfileQuery>) -> Response {
    // The token was checked by `admin::require_token`.
    let seconds = query.seconds.unwrap_or(10);
    if seconds == 0 || seconds > MAX_SECONDS {
        let message = format!("seconds must be 1..={MAX_SECONDS}, got {seconds}\n");
        return (StatusCode::BAD_REQUEST, message).into_response();
    }
    if PROFILING.swap(true, Ordering::AcqRel) {
        return (StatusCode::CONFLICT, "a profile is already being taken\n").into_response();
    }
    let result = take(Duration::from_secs(seconds)).await;
    PROFILING.store(false, Ordering::Release);
    match result {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"profile\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(message) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{message}\n")).into_response(),
    }
}

async fn take(duration: Duration) -> Result<Vec<u8>, String> {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| format!("starting the profiler: {e}"))?;
    tokio::time::sleep(duration).await;
    let report = guard
        .report()
        .build()
        .map_err(|e| format!("building the profile: {e}"))?;
    let profile = report
        .pprof()
        .map_err(|e| format!("encoding the profile: {e}"))?;
    profile
        .write_to_bytes()
        .map_err(|e| format!("encoding the profile: {e}"))
}
