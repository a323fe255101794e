//! The `cordon` command line: the commands, each in its own file, and the dispatch.

pub mod actions;
pub mod alerts;
pub mod backtest_diff;
pub mod bench;
pub mod junit;
pub mod query;
pub mod rules;
pub mod serve;
pub mod sigma_import;
pub mod simulate;
pub mod sink;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::Config;

#[derive(Parser)]
#[command(name = "cordon", version, about = "Detection and response for desktop AI agents")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the server's settings come from (every command that reads them).
#[derive(Args, Clone)]
pub struct ServerArgs {
    /// TOML settings file; `CORDON_<SECTION>__<FIELD>` variables override it.
    #[arg(long, env = "CORDON_CONFIG")]
    config: Option<PathBuf>,
    /// Where events are stored (overrides storage.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl ServerArgs {
    pub fn load(&self) -> anyhow::Result<Config> {
        Config::load(self.config.as_deref(), self.data_dir.clone())
    }

    /// The settings without the server's checks (a rules folder under test may be anywhere).
    pub fn load_unchecked(&self) -> anyhow::Result<Config> {
        Config::load_unchecked(self.config.as_deref(), self.data_dir.clone())
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: OTLP receivers and storage.
    Serve(ServerArgs),
    /// Run read-only SQL over everything stored (tables: events, and one per event kind).
    Query(query::QueryArgs),
    /// Generate simulated agent telemetry, benign and attacks.
    Simulate(simulate::SimulateArgs),
    /// Run the server and feed it simulated telemetry: the whole pipeline in one command.
    Demo(crate::demo::DemoArgs),
    /// Check, test and backtest detection rules.
    Rules {
        #[command(subcommand)]
        command: rules::RulesCommand,
    },
    /// Alerts, from the server's API.
    Alerts {
        #[command(subcommand)]
        command: alerts::AlertsCommand,
    },
    /// Response actions: list, approve, deny, retry, audit (through the API).
    Actions {
        #[command(subcommand)]
        command: actions::ActionsCommand,
    },
    /// Request a response by hand (through the API): isolate-host, release-host, revoke-token, notify.
    Respond {
        #[command(subcommand)]
        command: actions::RespondCommand,
    },
    /// A webhook receiver for demos and tests: checks signatures and prints what arrives.
    Sink(sink::SinkArgs),
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        bench: bench::BenchCommand,
    },
}

/// A duration argument: `60s`, `10m`, `1h 30m`.
pub fn humantime_duration(text: &str) -> Result<Duration, String> {
    humantime_serde::re::humantime::parse_duration(text).map_err(|error| error.to_string())
}

fn init_logging() {
    // rusqlite_migration says "migrated" at info for every store it opens: once per
    // fixture case in `cordon rules test`, noise to the engineer reading the results.
    let filter = tracing_subscriber::EnvFilter::try_from_env("CORDON_LOG")
        .unwrap_or_else(|_| "info,rusqlite_migration=warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Parses the command line and runs the command.
pub async fn run() -> anyhow::Result<()> {
    crate::allocator::configure();
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Query(args) => query::run(args).await,
        Command::Simulate(args) => simulate::run(args).await,
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Rules { command } => rules::run(command).await,
        Command::Alerts { command } => alerts::run(command).await,
        Command::Actions { command } => actions::run(command).await,
        Command::Respond { command } => actions::respond(command).await,
        Command::Sink(args) => sink::run(args).await,
        Command::Bench { bench } => bench::run(bench).await,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
