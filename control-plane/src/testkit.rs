//! `meshplug test`: a filter author's build tested against their own `envoy.yaml` and a real
//! Envoy. The configuration is rendered with the filters under test served over ECDS by an
//! in-process control plane ([`render`]), checked with Envoy's `--mode validate`, and run;
//! cases (the pre-flight fixture format, extended: [`meshplug_preflight::CasesFile`]) send
//! requests, swap filters (waited for through the control plane) and load during swaps.
//! [`run`] is the whole thing; [`Session`] is the engine, for `meshplug-testkit` users.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use meshplug_preflight::CasesFile;

use crate::Error;

mod fake;
pub mod render;
pub mod report;
mod run;
mod send;
mod session;

pub use run::{CaseResult, run_cases};
pub use session::{Session, SessionSpec};

/// One `meshplug test` run.
#[derive(Debug, Clone)]
pub struct TestPlan {
    /// The user's Envoy configuration (never modified).
    pub envoy_config: PathBuf,
    /// The cases file (YAML or JSON).
    pub cases: PathBuf,
    /// The filters under test: name → build.
    pub filters: BTreeMap<String, PathBuf>,
    /// The Envoy binary.
    pub envoy: PathBuf,
    /// Where the rendered configuration, Envoy's log and the control plane's data go.
    pub report_dir: PathBuf,
}

/// What a run came to.
#[derive(Debug, Clone)]
pub struct TestReport {
    /// Each case's result, in order.
    pub results: Vec<CaseResult>,
    /// The human summary.
    pub summary: String,
    /// JUnit XML.
    pub junit: String,
    /// The configuration Envoy ran.
    pub rendered: PathBuf,
}

impl TestReport {
    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.results.iter().all(CaseResult::passed)
    }
}

/// Reads a cases file (YAML or JSON). It goes through JSON's data model, so a step is
/// written `- send: {...}` (a mapping), not with a YAML tag; an error names the field's path.
pub fn read_cases(path: &Path) -> Result<CasesFile, Error> {
    let text = std::fs::read_to_string(path).map_err(Error::io("reading", path))?;
    let refused =
        |e: &dyn std::fmt::Display| Error::TestSetup(format!("cases {}: {e}", path.display()));
    let json: serde_json::Value = serde_norway::from_str(&text).map_err(|e| refused(&e))?;
    serde_path_to_error::deserialize(json).map_err(|e| refused(&e))
}

/// Reads an Envoy configuration file (YAML or JSON) as it is: [`render`] changes a copy.
pub fn read_envoy_config(path: &Path) -> Result<serde_norway::Value, Error> {
    let text = std::fs::read_to_string(path).map_err(Error::io("reading", path))?;
    serde_norway::from_str(&text)
        .map_err(|e| Error::TestSetup(format!("Envoy configuration {}: {e}", path.display())))
}

/// Starts the session, runs every case, stops everything.
pub async fn run(plan: &TestPlan) -> Result<TestReport, Error> {
    let envoy_config = read_envoy_config(&plan.envoy_config)?;
    let cases = read_cases(&plan.cases)?;
    for (name, build) in &plan.filters {
        if !build.is_file() {
            return Err(Error::TestSetup(format!(
                "--filter {name}={}: no such file",
                build.display()
            )));
        }
    }
    std::fs::create_dir_all(&plan.report_dir).map_err(Error::io("creating", &plan.report_dir))?;
    let spec = SessionSpec {
        envoy_config,
        filters: plan.filters.clone(),
        upstreams: cases.upstreams.clone(),
        configs: cases
            .configs
            .iter()
            .map(|(name, value)| (name.clone(), meshplug_preflight::config_text(value)))
            .collect(),
        envoy: plan.envoy.clone(),
        dir: plan.report_dir.clone(),
    };
    if let Some(name) = spec.configs.keys().find(|n| !spec.filters.contains_key(*n)) {
        return Err(Error::TestSetup(format!(
            "cases: configs names {name:?}, which is not a filter under test (--filter)"
        )));
    }
    let mut session = Session::start(&spec).await?;
    let base = plan.cases.parent().unwrap_or(Path::new("."));
    let results = run_cases(&mut session, &cases, base).await;
    let suite = plan.envoy_config.display().to_string();
    Ok(TestReport {
        summary: report::summary(&results, &session.envoy_log),
        junit: report::junit(&suite, &results),
        rendered: session.rendered.clone(),
        results,
    })
}
