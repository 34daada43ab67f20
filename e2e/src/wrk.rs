//! `wrk` as load during a change: how many requests, how many answered non-2xx, how many
//! socket errors. The process is killed if the test ends first.

use std::time::Duration;

use crate::HarnessError;

/// What one wrk run saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WrkReport {
    /// Requests completed.
    pub requests: u64,
    /// Answers that were not 2xx or 3xx.
    pub non_2xx: u64,
    /// Connect, read, write and timeout errors, summed.
    pub socket_errors: u64,
}

/// Runs `wrk -t2 -c<connections> -d<duration>` against `url` with `headers`.
pub async fn run_wrk(
    url: &str,
    headers: &[(&str, &str)],
    connections: u32,
    duration: Duration,
) -> Result<WrkReport, HarnessError> {
    let mut command = tokio::process::Command::new("wrk");
    command
        .args(["-t", "2", "-c", &connections.to_string()])
        .args(["-d", &format!("{}s", duration.as_secs().max(1))])
        .kill_on_drop(true);
    for (name, value) in headers {
        command.args(["-H", &format!("{name}: {value}")]);
    }
    let output = command
        .arg(url)
        .output()
        .await
        .map_err(HarnessError::io("running wrk (make setup installs it)"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse(&text).ok_or_else(|| HarnessError::NotReady(format!("unreadable wrk output:\n{text}")))
}

fn parse(text: &str) -> Option<WrkReport> {
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse().ok())?;
    let non_2xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let socket_errors = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|rest| {
            rest.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Some(WrkReport {
        requests,
        non_2xx,
        socket_errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_counts_and_errors() {
        let text = "Running 2s test @ http://x/\n  2 threads and 8 connections\n  \
                    1234 requests in 2.00s, 1.00MB read\n  Socket errors: connect 1, read 2, write 0, timeout 3\n  \
                    Non-2xx or 3xx responses: 7\nRequests/sec: 617.00\n";
        assert_eq!(
            parse(text),
            Some(WrkReport {
                requests: 1234,
                non_2xx: 7,
                socket_errors: 6
            })
        );
        let clean = "  10 requests in 1.00s, 1KB read\n";
        assert_eq!(parse(clean).map(|r| r.non_2xx + r.socket_errors), Some(0));
    }
}
