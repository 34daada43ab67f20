//! Which traffic counts as a proxy's history before a rollout (the baseline when no baseline
//! cohort is left): the history window, less every span in which a quarantined version may
//! have served (from its rollout's start until the settle time after its rollback). That
//! traffic was partly the bad version's, not the version in force. Pure.

use super::record::PluginRecord;

/// The spans `[from, to)` of `window` (`[from, to)`, ms) that count for `record`'s plugin.
pub fn clean_spans(record: &PluginRecord, window: (u64, u64), settle_ms: u64) -> Vec<(u64, u64)> {
    let (from, to) = window;
    let mut dirty: Vec<(u64, u64)> = record
        .quarantine
        .values()
        .map(|q| {
            // A flush received at the rollback covers the time before it: the span ends
            // after it. Without its start (saved by an older version), all before it is out.
            (q.started_ms.unwrap_or(0), q.at_ms + settle_ms + 1)
        })
        .filter(|(start, end)| *end > from && *start < to)
        .collect();
    dirty.sort_unstable();
    let mut spans = Vec::new();
    let mut at = from;
    for (start, end) in dirty {
        if start > at {
            spans.push((at, start.min(to)));
        }
        at = at.max(end);
        if at >= to {
            break;
        }
    }
    if at < to {
        spans.push((at, to));
    }
    spans
}

#[cfg(test)]
mod tests;
