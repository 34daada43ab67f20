//! What a run prints and writes: a summary a person reads (each failure with what differed)
//! and JUnit XML a CI reads.

use std::fmt::Write;

use super::run::CaseResult;

/// The human summary: one line per case, each difference under a failed one, a total.
pub fn summary(results: &[CaseResult], envoy_log: &std::path::Path) -> String {
    let mut out = String::new();
    for result in results {
        let mark = if result.passed() { "ok  " } else { "FAIL" };
        let _ = writeln!(out, "{mark} {} ({:.2} s)", result.name, result.seconds);
        for note in &result.notes {
            let _ = writeln!(out, "       {note}");
        }
        for failure in &result.failures {
            let _ = writeln!(out, "     - {failure}");
        }
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    let _ = writeln!(
        out,
        "{} cases, {} passed, {failed} failed",
        results.len(),
        results.len() - failed
    );
    if failed > 0 {
        let _ = writeln!(out, "Envoy's log: {}", envoy_log.display());
    }
    out
}

/// JUnit XML: one `testsuite` named `suite`, one `testcase` per case, a `failure` with every
/// difference for a failed one.
pub fn junit(suite: &str, results: &[CaseResult]) -> String {
    let failed = results.iter().filter(|r| !r.passed()).count();
    let total: f64 = results.iter().map(|r| r.seconds).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites><testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" time=\"{total:.3}\">",
        escape(suite),
        results.len()
    );
    for result in results {
        let _ = write!(
            out,
            "<testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape(suite),
            escape(&result.name),
            result.seconds
        );
        if result.passed() {
            out.push_str("/>\n");
            continue;
        }
        let first = result
            .failures
            .first()
            .map_or("", |f| f.lines().next().unwrap_or(""));
        let _ = writeln!(
            out,
            "><failure message=\"{}\">{}</failure></testcase>",
            escape(first),
            escape(&result.failures.join("\n"))
        );
    }
    out.push_str("</testsuite></testsuites>\n");
    out
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {
                format!("&#x{:x};", c as u32)
            }
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, failures: &[&str]) -> CaseResult {
        CaseResult {
            name: name.into(),
            failures: failures.iter().map(|f| f.to_string()).collect(),
            seconds: 0.5,
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_failed_case_carries_every_difference_escaped() {
        let results = [
            result("ok", &[]),
            result("a <b>", &["step 1: expected status 200, got 401", "x & y"]),
        ];
        let xml = junit("envoy.yaml", &results);
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(
            xml.contains("<testcase classname=\"envoy.yaml\" name=\"ok\" time=\"0.500\"/>"),
            "{xml}"
        );
        assert!(xml.contains("name=\"a &lt;b&gt;\""), "{xml}");
        assert!(
            xml.contains("message=\"step 1: expected status 200, got 401\""),
            "{xml}"
        );
        assert!(xml.contains("x &amp; y</failure>"), "{xml}");
        let text = summary(&results, std::path::Path::new("/tmp/envoy.log"));
        assert!(
            text.contains("FAIL a <b> (0.50 s)\n     - step 1: expected status 200"),
            "{text}"
        );
        assert!(
            text.ends_with("2 cases, 1 passed, 1 failed\nEnvoy's log: /tmp/envoy.log\n"),
            "{text}"
        );
    }
}
