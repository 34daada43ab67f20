//! Decisions and numbers said in words, for the pages. Pure.

use meshplug_core::rollout::traffic::{Totals, wilson};

use crate::rollout::state::Decision;

/// A Unix time in ms as `YYYY-MM-DD HH:MM:SS UTC`.
pub(super) fn when(at_ms: u64) -> String {
    let secs = at_ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A ratio with its Wilson interval at `z`: `0.012 [0.004, 0.031] (3/250)`.
pub(super) fn ratio(part: u64, whole: u64, z: f64) -> String {
    if whole == 0 {
        return "- (0 requests)".into();
    }
    let (low, high) = wilson(part, whole, z);
    format!(
        "{:.3} [{low:.3}, {high:.3}] ({part}/{whole})",
        part as f64 / whole as f64
    )
}

/// The three traffic signals of `totals`: (5xx, slow, requests the filter did not see) as
/// (part, whole).
pub(super) fn signals(totals: &Totals) -> [(&'static str, u64, u64); 3] {
    [
        ("5xx ratio", totals.rq_5xx, totals.completed),
        ("slow share", totals.slow, totals.timed),
        (
            "bypassing the filter",
            totals.completed.saturating_sub(totals.heartbeats),
            totals.completed,
        ),
    ]
}

/// What a decision did, in a sentence.
pub(super) fn sentence(decision: &Decision) -> String {
    let to = short_version(&decision.to);
    let what = match decision.action.as_str() {
        "start" => format!(
            "Started rolling out {to} to {} proxies",
            decision.canary_size
        ),
        "advance" => format!("Advanced {to} to the next stage"),
        "promote" => format!("Promoted {to}: it is the last good version"),
        "rollback" => match &decision.gate {
            Some(gate) => format!(
                "Rolled {to} back: the {} gate failed",
                format!("{gate:?}").to_lowercase()
            ),
            None => format!("Rolled {to} back"),
        },
        "rolled_back" => format!("Every affected proxy runs {to} again"),
        "pause" => format!("Paused the rollout of {to}"),
        "resume" => format!("Resumed the rollout of {to}"),
        "look" => format!("Looked at the traffic of {to}"),
        "cancel" => format!("Cancelled the rollout of {to}"),
        "queue" => format!("Queued {to}"),
        "remove" => "Removed the filter from every proxy".to_string(),
        other => format!("{other} {to}"),
    };
    let numbers = match (&decision.canary_totals, &decision.baseline_totals) {
        (Some(canary), Some(baseline)) => format!(
            "; canary {} requests, {} 5xx; baseline{} {} requests, {} 5xx",
            canary.completed,
            canary.rq_5xx,
            match decision.baseline_kind {
                Some(meshplug_core::rollout::decide::BaselineKind::History) => " (before the push)",
                _ => "",
            },
            baseline.completed,
            baseline.rq_5xx
        ),
        _ => String::new(),
    };
    format!("{what}{numbers}. Why: {}", decision.reason)
}

fn short_version(version: &str) -> String {
    match version.split_once(':') {
        Some((sha, config)) => format!("{}:{config}", &sha[..sha.len().min(12)]),
        None => version.chars().take(12).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(when(1_796_616_394_658), "2026-12-07 04:06:34 UTC");
        assert_eq!(when(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn a_ratio_carries_its_interval_and_counts() {
        assert_eq!(ratio(0, 0, 2.576), "- (0 requests)");
        let text = ratio(163, 163, 2.576);
        assert!(text.starts_with("1.000 [0.96"), "{text}");
        assert!(text.ends_with("(163/163)"), "{text}");
    }
}
