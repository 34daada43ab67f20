//! The command line of the benchmark tools (`e2e/tools`): `--name value` pairs and flags.

/// The arguments of this process.
#[derive(Debug, Clone)]
pub struct BenchArgs(Vec<String>);

impl BenchArgs {
    /// This process's arguments.
    pub fn from_env() -> Self {
        Self(std::env::args().collect())
    }

    /// The value after `name`, if `name` is given.
    pub fn value(&self, name: &str) -> Option<String> {
        let at = self.0.iter().position(|a| a == name)?;
        self.0.get(at + 1).cloned()
    }

    /// Whether the flag `name` is given.
    pub fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }

    /// The number after `name`, or `default` when `name` is not given.
    pub fn number(&self, name: &str, default: usize) -> Result<usize, String> {
        match self.value(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| format!("{name} {v}: {e}")),
        }
    }
}

/// When and where a report was measured: `2026-12-01 18:09 UTC, 2 cores`.
pub fn stamp() -> String {
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{date}, {cores} cores")
}

/// Prints `report` and, with `append`, adds it to that file (`BENCHMARKS.md`).
pub fn publish(report: &str, append: Option<&str>) -> std::io::Result<()> {
    println!("{report}");
    if let Some(path) = append {
        let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
        std::io::Write::write_all(&mut file, format!("\n{report}").as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_flags_and_numbers() {
        let args = BenchArgs(
            ["tool", "--nodes", "30", "--tls", "--append", "B.md"]
                .map(String::from)
                .to_vec(),
        );
        assert_eq!(args.number("--nodes", 1), Ok(30));
        assert_eq!(args.number("--changes", 5), Ok(5), "the default");
        assert!(args.flag("--tls") && !args.flag("--fetch"));
        assert_eq!(args.value("--append").as_deref(), Some("B.md"));
        assert!(
            BenchArgs(vec!["t".into(), "--nodes".into(), "x".into()])
                .number("--nodes", 1)
                .is_err()
        );
    }
}
