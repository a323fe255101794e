//! The `cordon` command line.

// prost allocates every decoded string; glibc's malloc and free were 38% of the ingest
// profile. mimalloc halves that cost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use cordon::bench::ingest::IngestBenchOptions;
use cordon::query::OutputFormat;
use cordon::simulate::runner::Pace;
use cordon::simulate::senders::{SendReport, Sender};
use cordon::simulate::{Scenario, SimConfig, Simulator};
use cordon::{Config, Server};
use cordon_schemas::FlatEvent;

#[derive(Parser)]
#[command(name = "cordon", version, about = "Detection and response for desktop AI agents")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct ServerArgs {
    /// TOML settings file; `CORDON_<SECTION>__<FIELD>` variables override it.
    #[arg(long, env = "CORDON_CONFIG")]
    config: Option<PathBuf>,
    /// Where events are stored (overrides storage.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl ServerArgs {
    fn load(&self) -> anyhow::Result<Config> {
        Config::load(self.config.as_deref(), self.data_dir.clone())
    }

    /// The settings without the server's checks (a rules folder under test may be anywhere).
    fn load_unchecked(&self) -> anyhow::Result<Config> {
        Config::load_unchecked(self.config.as_deref(), self.data_dir.clone())
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: OTLP receivers and storage.
    Serve(ServerArgs),
    /// Run read-only SQL over everything stored (tables: events, and one per event kind).
    Query {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
        /// Memory a query may use, in MiB.
        #[arg(long, default_value_t = 1024)]
        memory_mib: usize,
        sql: String,
    },
    /// Generate simulated agent telemetry, benign and attacks.
    Simulate(SimulateArgs),
    /// Run the server and feed it simulated telemetry: the whole pipeline in one command.
    Demo {
        #[command(flatten)]
        server: ServerArgs,
        /// How long to feed events; the server keeps running until Ctrl-C unless --exit.
        #[arg(long, default_value = "60s", value_parser = humantime_duration)]
        duration: Duration,
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// Stop once the simulation has been sent and summarised.
        #[arg(long)]
        exit: bool,
        /// A running `cordon sink` to send responses to (secret in CORDON_SINK_SECRET);
        /// without it, and without [responder.targets], the demo runs a sink of its own.
        #[arg(long)]
        sink: Option<String>,
    },
    /// Check, test and backtest detection rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Alerts, from the server's API.
    Alerts {
        #[command(subcommand)]
        command: AlertsCommand,
    },
    /// Response actions: list, approve, deny, retry, audit (through the API).
    Actions {
        #[command(subcommand)]
        command: cordon::actions_cmd::ActionsCommand,
    },
    /// Request a response by hand (through the API): isolate-host, release-host, revoke-token, notify.
    Respond {
        #[command(subcommand)]
        command: cordon::actions_cmd::RespondCommand,
    },
    /// A webhook receiver for demos and tests: checks signatures and prints what arrives.
    Sink {
        #[arg(long, default_value = "127.0.0.1:9400")]
        listen: std::net::SocketAddr,
        /// The environment variable holding the shared secret...
        #[arg(long, default_value = "CORDON_SINK_SECRET")]
        secret_env: String,
        /// ...or a file holding it.
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// How far a delivery's timestamp may be from now.
        #[arg(long, default_value = "5m", value_parser = humantime_duration)]
        tolerance: Duration,
    },
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        bench: BenchCommand,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Plan every rule against the event schema; errors name file, line and column.
    Check {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Run every rule's fixtures (tests/*.jsonl against tests/*.expected.json).
    Test {
        #[command(flatten)]
        server: ServerArgs,
        /// Write the expected files from this run (review the diff before committing).
        #[arg(long)]
        bless: bool,
        /// Only this rule.
        rule: Option<String>,
    },
    /// Run the rules over stored events and list the alerts they would have raised.
    Backtest {
        #[command(flatten)]
        server: ServerArgs,
        /// Event time to start from (RFC 3339).
        #[arg(long)]
        from: DateTime<Utc>,
        /// Event time to stop at (RFC 3339); default now.
        #[arg(long)]
        to: Option<DateTime<Utc>>,
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
}

#[derive(Subcommand)]
enum AlertsCommand {
    /// One alert: evidence and notes.
    Show {
        #[command(flatten)]
        client: cordon::api_client::ApiClientArgs,
        id: String,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Acknowledge, close (with a reason), reopen, assign, or add a note.
    Update {
        #[command(flatten)]
        client: cordon::api_client::ApiClientArgs,
        id: String,
        #[command(flatten)]
        triage: cordon::alerts_cmd::TriageArgs,
    },
    /// Alerts, newest activity first.
    List {
        #[command(flatten)]
        client: cordon::api_client::ApiClientArgs,
        #[command(flatten)]
        filters: cordon::alerts_cmd::AlertFilters,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    Table,
    Json,
}

fn print_alerts(alerts: &[cordon_detections::alerts::Alert], format: ListFormat) -> anyhow::Result<()> {
    match format {
        ListFormat::Table => println!("{}", cordon::alerts_cmd::render_alerts(alerts)),
        ListFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "alerts": alerts }))?
        ),
    }
    Ok(())
}

#[derive(Subcommand)]
enum BenchCommand {
    /// OTLP/gRPC to durable storage, against the bare protobuf decode of the same payloads.
    Ingest(IngestBenchOptions),
    /// Event-to-alert latency, per-tick rule cost with short and long windows, peak RSS.
    Detections(cordon::bench::detections::DetectionBenchOptions),
    /// Kafka to durable storage (a running broker: scripts/kafka-broker.sh), next to the
    /// OTLP/gRPC figure for the same payloads.
    Kafka(cordon::bench::kafka::KafkaBenchOptions),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    Grpc,
    Http,
    HttpJson,
    Jsonl,
    /// A Kafka topic (`--endpoint` is the brokers, `--topic`, `--kafka-format`).
    Kafka,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KafkaFormat {
    OtlpProto,
    OtlpJson,
    Json,
}

impl From<KafkaFormat> for cordon_ingest::kafka::MessageFormat {
    fn from(format: KafkaFormat) -> Self {
        match format {
            KafkaFormat::OtlpProto => cordon_ingest::kafka::MessageFormat::OtlpProto,
            KafkaFormat::OtlpJson => cordon_ingest::kafka::MessageFormat::OtlpJson,
            KafkaFormat::Json => cordon_ingest::kafka::MessageFormat::Json,
        }
    }
}

#[derive(Args)]
struct SimulateArgs {
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 20)]
    hosts: usize,
    /// Background events per second of simulated time.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Simulated time covered, e.g. 60s, 10m.
    #[arg(long, default_value = "60s", value_parser = humantime_duration)]
    duration: Duration,
    /// Event time of the first event (RFC 3339); default now.
    #[arg(long)]
    start: Option<DateTime<Utc>>,
    /// Attacks to inject, by rule id, or `all`. Repeat or separate with commas.
    #[arg(long = "scenario", value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Simulated time before the first attack.
    #[arg(long, default_value = "5s", value_parser = humantime_duration)]
    attack_at: Duration,
    #[arg(long, value_enum, default_value = "grpc")]
    to: Transport,
    /// Receiver address; defaults to the contract ports on localhost.
    #[arg(long)]
    endpoint: Option<String>,
    /// The producer credential to present (`Authorization: Bearer`), for OTLP.
    #[arg(long, env = "CORDON_PRODUCER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// With --to kafka: the topic.
    #[arg(long, default_value = "agent-events")]
    topic: String,
    /// With --to kafka: how each message is encoded (contract section 1).
    #[arg(long, value_enum, default_value = "otlp-proto")]
    kafka_format: KafkaFormat,
    /// With --to jsonl: the file to write (default standard output).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Events per request.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    #[arg(long, value_enum, default_value = "realtime")]
    pace: Pace,
    /// Print the planned attacks as JSON and exit without sending.
    #[arg(long)]
    plan: bool,
}

fn humantime_duration(text: &str) -> Result<Duration, String> {
    humantime_serde::re::humantime::parse_duration(text).map_err(|error| error.to_string())
}

fn parse_scenarios(names: &[String]) -> anyhow::Result<Vec<Scenario>> {
    let mut scenarios = Vec::new();
    for name in names.iter().map(|name| name.trim()).filter(|name| !name.is_empty()) {
        if name == "all" {
            scenarios.extend(Scenario::ALL);
        } else if let Some(scenario) = Scenario::from_rule_id(name) {
            scenarios.push(scenario);
        } else {
            let known: Vec<&str> = Scenario::ALL
                .iter()
                .chain(&Scenario::WITH_RESPONSES)
                .map(|scenario| scenario.rule_id())
                .collect();
            bail!("unknown scenario {name:?}; known: all, {}", known.join(", "));
        }
    }
    Ok(scenarios)
}

impl SimulateArgs {
    fn sim_config(&self) -> anyhow::Result<SimConfig> {
        if self.rate.is_nan() || self.rate <= 0.0 {
            bail!("--rate must be above 0, got {}", self.rate);
        }
        // Sent as fast as taken, a run without --start ends now: starting now, it would
        // run ahead of the clock and the door would refuse what is too far ahead.
        let start = self.start.unwrap_or_else(|| match self.pace {
            Pace::Realtime => Utc::now(),
            Pace::Fast => Utc::now() - self.duration,
        });
        Ok(SimConfig {
            seed: self.seed,
            hosts: self.hosts,
            rate: self.rate,
            duration: self.duration,
            start_unix_nano: start.timestamp_nanos_opt().context("--start is out of range")?,
            scenarios: parse_scenarios(&self.scenarios)?,
            attack_at: self.attack_at,
            ..SimConfig::default()
        })
    }

    async fn sender(&self) -> anyhow::Result<Sender> {
        Ok(self.unauthenticated_sender().await?.with_token(self.token.as_deref()))
    }

    async fn unauthenticated_sender(&self) -> anyhow::Result<Sender> {
        Ok(match self.to {
            Transport::Grpc => Sender::grpc(self.endpoint.as_deref().unwrap_or("http://127.0.0.1:4317")).await?,
            Transport::Http => Sender::http(self.endpoint.as_deref().unwrap_or("http://127.0.0.1:4318"), false)?,
            Transport::HttpJson => Sender::http(self.endpoint.as_deref().unwrap_or("http://127.0.0.1:4318"), true)?,
            Transport::Kafka => Sender::kafka(
                self.endpoint.as_deref().unwrap_or("127.0.0.1:9092"),
                &self.topic,
                self.kafka_format.into(),
            )?,
            Transport::Jsonl => match &self.output {
                Some(path) => Sender::json_lines(Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
                ))),
                None => Sender::json_lines(Box::new(std::io::stdout())),
            },
        })
    }
}

/// Prints one delivery the sink received.
fn print_delivery(received: &cordon_responder::sink::Received) {
    let what = format!(
        "{} host={} user={} action_id={}",
        received.action.as_deref().unwrap_or("?"),
        received.host_id.as_deref().unwrap_or("-"),
        received.user_name.as_deref().unwrap_or("-"),
        received.action_id.as_deref().unwrap_or("-"),
    );
    if received.signature != "valid" {
        println!("cordon sink: REFUSED {what}: {}", received.signature);
    } else if received.duplicate {
        println!("cordon sink: repeat of {what} (already received; not acted on again)");
    } else {
        println!("cordon sink: received {what} (signature valid)");
    }
}

/// Points every response action at a sink, unless targets are configured: the given
/// `cordon sink`, or one the demo runs itself for as long as the process lives.
async fn demo_targets(
    config: &mut Config,
    sink: Option<String>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if !config.responder.targets.is_empty() {
        return Ok(None);
    }
    let (base, secret, own) = match sink {
        Some(url) => (
            url.trim_end_matches('/').to_string(),
            cordon_responder::secret::SecretSource {
                secret_env: Some("CORDON_SINK_SECRET".into()),
                secret_file: None,
            },
            None,
        ),
        None => {
            // A secret for this run, in a file only this user can read.
            let path = config.storage.data_dir.join("demo-webhook-secret");
            std::fs::create_dir_all(&config.storage.data_dir)?;
            std::fs::write(&path, uuid::Uuid::new_v4().simple().to_string())?;
            #[cfg(unix)]
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            let source = cordon_responder::secret::SecretSource {
                secret_env: None,
                secret_file: Some(path),
            };
            let secret = source.resolve().map_err(|message| anyhow::anyhow!(message))?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}", listener.local_addr()?);
            let sink = cordon_responder::sink::Sink::new(secret, 300, Box::new(print_delivery));
            let task = tokio::spawn(async move {
                let _ = axum::serve(listener, sink.router()).await;
            });
            (url, source, Some(task))
        }
    };
    for action in cordon_responder::actions::names() {
        config.responder.targets.insert(
            action.to_string(),
            cordon_responder::config::TargetConfig {
                url: format!("{base}/{action}"),
                secret_env: secret.secret_env.clone(),
                secret_file: secret.secret_file.clone(),
                timeout: Duration::from_secs(5),
                headers: Default::default(),
                dry_run: false,
                max_in_flight: None,
                // The demo's receiver (its own, or `cordon sink` from scripts/demo.sh)
                // runs on this machine.
                allow_http: true,
            },
        );
    }
    println!("  responses go to the webhook sink at {base}");
    Ok(own)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CORDON_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> anyhow::Result<()> {
    // Rules plan on the engine's blocking thread; nested expressions (up to
    // guard::MAX_NESTING) need more than the 2 MiB a runtime thread gets by default.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 << 20)
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    cordon::allocator::configure();
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Serve(args) => {
            let config = args.load()?;
            let server = Server::start(config).await?;
            eprintln!(
                "cordon: OTLP/gRPC on {}, OTLP/HTTP on {}; Ctrl-C stops",
                server.grpc_addr, server.http_addr
            );
            cordon::server::shutdown_signal().await;
            eprintln!("cordon: stopping; writing buffered events to Parquet");
            server.stop().await?;
        }
        Command::Query {
            server,
            format,
            memory_mib,
            sql,
        } => {
            let config = server.load()?;
            let batches = cordon::query::query(&config.storage, &sql, memory_mib << 20).await?;
            println!("{}", cordon::query::render(&batches, format)?);
        }
        Command::Simulate(args) => {
            let config = args.sim_config()?;
            let simulator = Simulator::new(config.clone());
            for injection in simulator.injections() {
                eprintln!("cordon simulate: injecting {}", serde_json::to_string(injection)?);
            }
            if args.plan {
                println!("{}", serde_json::to_string_pretty(simulator.injections())?);
                return Ok(());
            }
            let mut sender = args.sender().await?;
            let report = cordon::simulate::runner::run(config, &mut sender, args.batch, args.pace, |_| {}).await?;
            eprintln!(
                "cordon simulate: sent {} events, {} rejected, {} retries{}",
                report.sent,
                report.rejected,
                report.retries,
                report
                    .last_message
                    .map(|message| format!("; receiver said: {message}"))
                    .unwrap_or_default()
            );
        }
        Command::Demo {
            server,
            duration,
            rate,
            exit,
            sink,
        } => cordon_demo(server.load()?, duration, rate, exit, sink).await?,
        Command::Actions { command } => cordon::actions_cmd::run(command).await?,
        Command::Respond { command } => cordon::actions_cmd::respond(command).await?,
        Command::Sink {
            listen,
            secret_env,
            secret_file,
            tolerance,
        } => {
            let source = match secret_file {
                Some(path) => cordon_responder::secret::SecretSource {
                    secret_env: None,
                    secret_file: Some(path),
                },
                None => cordon_responder::secret::SecretSource {
                    secret_env: Some(secret_env),
                    secret_file: None,
                },
            };
            let secret = source
                .resolve()
                .map_err(|message| anyhow::anyhow!("cordon sink: {message}"))?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            eprintln!(
                "cordon sink: receiving webhooks on http://{}; Ctrl-C stops",
                listener.local_addr()?
            );
            let sink = cordon_responder::sink::Sink::new(secret, tolerance.as_secs() as i64, Box::new(print_delivery));
            axum::serve(listener, sink.router())
                .with_graceful_shutdown(cordon::server::shutdown_signal())
                .await?;
        }
        Command::Rules { command } => match command {
            RulesCommand::Check { server } => {
                let failed = cordon::rules_cmd::check(&server.load_unchecked()?.detections).await?;
                if failed > 0 {
                    bail!("{failed} rule(s) do not load");
                }
            }
            RulesCommand::Test { server, bless, rule } => {
                let failed =
                    cordon::rules_cmd::test(&server.load_unchecked()?.detections, rule.as_deref(), bless).await?;
                if failed > 0 {
                    bail!("{failed} fixture case(s) failed");
                }
            }
            RulesCommand::Backtest {
                server,
                from,
                to,
                rule,
                format,
            } => {
                let config = server.load()?;
                let alerts =
                    cordon::rules_cmd::backtest(&config, from, to.unwrap_or_else(Utc::now), rule.as_deref()).await?;
                print_alerts(&alerts, format)?;
            }
        },
        Command::Alerts {
            command:
                AlertsCommand::List {
                    client,
                    filters,
                    format,
                },
        } => {
            let alerts = cordon::alerts_cmd::list(&client, &filters).await?;
            print_alerts(&alerts, format)?;
        }
        Command::Alerts {
            command: AlertsCommand::Show { client, id, format },
        } => {
            let alert: cordon_detections::alerts::Alert = client.get(&format!("/api/v1/alerts/{id}"), &[]).await?;
            match format {
                ListFormat::Table => println!("{}", cordon::alerts_cmd::render_alert(&alert)),
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&alert)?),
            }
        }
        Command::Alerts {
            command: AlertsCommand::Update { client, id, triage },
        } => {
            let alert = cordon::alerts_cmd::update(&client, &id, &triage).await?;
            println!("{}", cordon::alerts_cmd::render_alert(&alert));
        }
        Command::Bench {
            bench: BenchCommand::Detections(options),
        } => {
            if cfg!(debug_assertions) {
                eprintln!(
                    "warning: a debug build; run `cargo run --release -- bench detections` for representative figures"
                );
            }
            cordon::bench::detections::run(options).await?;
        }
        Command::Bench {
            bench: BenchCommand::Ingest(options),
        } => {
            if cfg!(debug_assertions) {
                eprintln!(
                    "warning: a debug build; run `cargo run --release -- bench ingest` for representative figures"
                );
            }
            let report = cordon::bench::ingest::run(options).await?;
            println!("{report}");
        }
        Command::Bench {
            bench: BenchCommand::Kafka(options),
        } => {
            if cfg!(debug_assertions) {
                eprintln!(
                    "warning: a debug build; run `cargo run --release -- bench kafka` for representative figures"
                );
            }
            cordon::bench::kafka::run(options).await?;
        }
    }
    Ok(())
}

/// The demo's producer credentials: the simulator relays the whole fleet as a
/// Collector would; one laptop has a credential for itself only.
struct DemoProducers {
    collector: String,
    laptop: String,
}

fn demo_producers(config: &mut Config) -> Option<DemoProducers> {
    if !config.producers.credentials.is_empty() {
        return None;
    }
    let producers = DemoProducers {
        collector: format!("demo-collector-{}", uuid::Uuid::new_v4().simple()),
        laptop: format!("demo-wks-0042-{}", uuid::Uuid::new_v4().simple()),
    };
    let credential = |name: &str, token: &str, host: &str| cordon_ingest::auth::CredentialConfig {
        name: name.into(),
        token: Some(token.into()),
        hosts: vec![host.into()],
        ..Default::default()
    };
    config.producers.credentials = vec![
        credential("demo-collector", &producers.collector, "*"),
        credential("wks-0042", &producers.laptop, "wks-0042"),
    ];
    Some(producers)
}

/// wks-0042's credential sends events claiming to be ceo-laptop: they are rejected
/// and the `telemetry-spoofing` rule raises an alert naming the producer.
async fn send_spoofed_events(endpoint: &str, laptop_token: &str) -> anyhow::Result<()> {
    let now = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let events: Vec<FlatEvent> = (0..3)
        .map(|index| {
            let mut event = FlatEvent::new(now + index, "credential.pop_failure", "ceo-laptop");
            event
                .set("event.id", format!("spoofed-{index}"))
                .set("user.name", "ceo")
                .set("credential.token_id", "tok-ceo-1");
            event
        })
        .collect();
    let mut sender = Sender::grpc(endpoint).await?.with_token(Some(laptop_token));
    let mut report = SendReport::default();
    sender.send(&events, &mut report).await?;
    println!(
        "  wks-0042's credential sent {} events claiming host ceo-laptop: {} rejected (host_not_permitted), a telemetry-spoofing finding stored",
        report.sent, report.rejected
    );
    Ok(())
}

/// The demo: server plus simulator with every attack, then what arrived.
/// A host whose clock runs five minutes fast: its events are stored flagged, evaluated,
/// and move no clock; data health names it.
async fn send_fast_clock_host(sender: &mut Sender) -> anyhow::Result<()> {
    let now = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let events: Vec<FlatEvent> = (0..5)
        .map(|index| {
            let mut event = FlatEvent::new(now + (300 + index) * 1_000_000_000, "network.flow", "wks-fast-clock");
            event
                .set("event.id", format!("fast-clock-{index}"))
                .set("user.name", "dana")
                .set("destination.address", "api.anthropic.com")
                .set_int("destination.port", 443);
            event
        })
        .collect();
    let mut report = SendReport::default();
    sender.send(&events, &mut report).await?;
    println!(
        "  sent {} events from wks-fast-clock, whose clock runs 5 minutes fast",
        report.sent
    );
    Ok(())
}

async fn cordon_demo(
    mut config: Config,
    duration: Duration,
    rate: f64,
    exit: bool,
    sink: Option<String>,
) -> anyhow::Result<()> {
    let storage = config.storage.clone();
    let _own_sink = demo_targets(&mut config, sink).await?;
    // A sign-in token for this run, unless one is configured.
    let demo_token = (config.api.tokens.is_empty() && std::env::var("CORDON_ADMIN_TOKEN").is_err()).then(|| {
        let token = format!("demo-{}", uuid::Uuid::new_v4().simple());
        config.api.tokens.push(cordon::api::TokenConfig {
            name: "demo".into(),
            role: cordon::api::Role::Admin,
            token: Some(token.clone()),
            token_env: None,
        });
        token
    });
    let producers = demo_producers(&mut config);
    let server = Server::start(config).await?;
    println!(
        "cordon demo: OTLP/gRPC on {}, OTLP/HTTP on {}, alert API on http://{}, data in {}",
        server.grpc_addr,
        server.http_addr,
        server.api_addr,
        storage.data_dir.display()
    );
    println!("  console: http://{}/", server.api_addr);
    if let Some(token) = &demo_token {
        println!("  sign-in token for the console and API (admin): {token}");
    }
    if let Some(producers) = &producers {
        println!(
            "  producers authenticate: the simulator as credential demo-collector (all hosts; CORDON_PRODUCER_TOKEN={}), one laptop as wks-0042 (its own host only)",
            producers.collector
        );
    }
    let sim = SimConfig {
        rate,
        duration,
        start_unix_nano: Utc::now().timestamp_nanos_opt().unwrap_or_default(),
        // Every attack, and the one only delivered responses reveal: the demo's
        // responder delivers to the sink.
        scenarios: Scenario::ALL.into_iter().chain(Scenario::WITH_RESPONSES).collect(),
        ..SimConfig::default()
    };
    for injection in Simulator::new(sim.clone()).injections() {
        println!(
            "  injecting {:<32} on {} (user {}, agent {})",
            injection.rule_id, injection.host_id, injection.user_name, injection.agent_id
        );
    }
    let mut sender = Sender::grpc(&format!("http://{}", server.grpc_addr))
        .await?
        .with_token(producers.as_ref().map(|producers| producers.collector.as_str()));
    let mut last_print = std::time::Instant::now();
    let report = cordon::simulate::runner::run(sim, &mut sender, 200, Pace::Realtime, |report| {
        if last_print.elapsed() >= Duration::from_secs(5) {
            last_print = std::time::Instant::now();
            // Whole lines: the sink's reports interleave with these.
            println!("  sent {} events over OTLP/gRPC so far", report.sent);
        }
    })
    .await?;
    println!(
        "  sent {} events over OTLP/gRPC, {} rejected",
        report.sent, report.rejected
    );
    send_fast_clock_host(&mut sender).await?;
    if let Some(producers) = &producers {
        send_spoofed_events(&format!("http://{}", server.grpc_addr), &producers.laptop).await?;
    }
    let summary = cordon::query::query(
        &storage,
        "SELECT event_name, count(*) AS events, count(DISTINCT host_id) AS hosts, min(time) AS first, max(time) AS last \
         FROM events GROUP BY event_name ORDER BY events DESC",
        512 << 20,
    )
    .await?;
    println!(
        "what arrived (cordon query \"SELECT ... FROM events\"):\n{}",
        cordon::query::render(&summary, OutputFormat::Table)?
    );
    let provenance = cordon::query::query(
        &storage,
        "SELECT transport, producer, tls, count(*) AS events FROM events GROUP BY 1, 2, 3 ORDER BY events DESC",
        512 << 20,
    )
    .await?;
    println!(
        "how it arrived (columns transport, producer, tls on every event):\n{}",
        cordon::query::render(&provenance, OutputFormat::Table)?
    );
    // Let the rules finish the last events, then show what they raised.
    for _ in 0..100 {
        if server.detections.metrics.queued_events.get() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alerts = server
        .detections
        .alerts
        .list(&cordon_detections::alerts::AlertFilter::default())?;
    println!(
        "alerts raised (cordon alerts list):\n{}",
        cordon::alerts_cmd::render_alerts(&alerts)
    );
    let flagged = cordon::query::query(
        &storage,
        "SELECT host_id, count(*) AS events, max(CAST(attributes['cordon.clock_ahead_seconds'] AS BIGINT)) AS seconds_ahead \
         FROM events WHERE attributes['cordon.clock_ahead_seconds'] IS NOT NULL GROUP BY host_id",
        512 << 20,
    )
    .await?;
    println!(
        "events stored with a clock ahead of their arrival (attributes['cordon.clock_ahead_seconds']):\n{}",
        cordon::query::render(&flagged, OutputFormat::Table)?
    );
    let health = server.detections.shared.health.read().expect("health lock").clone();
    println!(
        "data health (console: Data health; GET /api/v1/health/hosts): {} hosts; events delayed {}, late {}, too old {}, skewed {}; {} silent host(s)",
        health.totals.hosts,
        health.totals.delayed,
        health.totals.late,
        health.totals.too_old,
        health.totals.skewed,
        health.silent_hosts
    );
    // Let the responses go out, then show them.
    let unsettled = |responder: &cordon_responder::Responder| {
        responder
            .list(&cordon_responder::store::ActionFilter::default())
            .map(|actions| {
                actions.iter().any(|action| {
                    matches!(
                        action.state,
                        cordon_responder::ActionState::Pending | cordon_responder::ActionState::InFlight
                    )
                })
            })
            .unwrap_or(false)
    };
    for _ in 0..100 {
        if !unsettled(&server.responder) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let actions = server
        .responder
        .list(&cordon_responder::store::ActionFilter::default())?;
    println!(
        "responses (cordon actions list):\n{}",
        cordon::actions_cmd::render_actions(&actions)
    );
    if let Some(held) = actions
        .iter()
        .find(|action| action.state == cordon_responder::ActionState::AwaitingApproval)
    {
        println!(
            "  a responder approves with: cordon actions approve {} --note \"...\"",
            held.id
        );
    }

    if let Some(token) = &demo_token {
        println!(
            "  try: curl -H 'Authorization: Bearer {token}' http://{}/api/v1/alerts",
            server.api_addr
        );
    }
    if !exit {
        println!(
            "the server keeps running; try: cordon query --data-dir {} \"SELECT * FROM network_flow LIMIT 5\"; Ctrl-C stops",
            storage.data_dir.display()
        );
        cordon::server::shutdown_signal().await;
    }
    server.stop().await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
