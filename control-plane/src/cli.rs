//! The `meshplug` command line as a library: [`main`] parses the arguments ([`Cli`]) and runs
//! the command; `src/main.rs` only calls it. Each command's wiring is in `cli/commands.rs`.

use clap::Parser;

use crate::client::{manifests_table, plugins_table, rollout_table};
use args::Command;
use commands::{agent, bootstrap, control, init, pki, serve, show, state, status, test, validate};

pub use args::Cli;

mod args;
mod commands;

/// Parses the command line and runs the command.
pub fn main() -> anyhow::Result<()> {
    run(Cli::parse())
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Agent(args) => agent(args),
        Command::Bootstrap(args) => bootstrap(args),
        Command::Validate(args) => validate(args),
        Command::Test(args) => test(args),
        Command::Init(command) => init(command),
        Command::Rollouts(args) => show(args, "/api/v1/rollouts", rollout_table),
        Command::Status(args) => status(args),
        Command::Plugins(args) => show(args, "/api/v1/plugins", plugins_table),
        Command::Manifests(args) => show(args, "/api/v1/manifests", manifests_table),
        Command::Pause(args) => control(args.admin, &args.plugin, "pause", serde_json::json!({})),
        Command::Resume(args) => control(args.admin, &args.plugin, "resume", serde_json::json!({})),
        Command::Rollback(args) => {
            control(args.admin, &args.plugin, "rollback", serde_json::json!({}))
        }
        Command::Promote(args) => control(
            args.admin,
            &args.plugin,
            "promote",
            serde_json::json!({ "full": args.full }),
        ),
        Command::Retry(args) => control(
            args.admin,
            &args.plugin,
            "retry",
            serde_json::json!({ "version": args.version }),
        ),
        Command::State(command) => state(command),
        Command::Pki(command) => pki(command),
    }
}

#[cfg(test)]
mod tests;
