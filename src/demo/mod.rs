//! `cordon demo`: the server on embedded defaults, fed simulated telemetry with every
//! attack, then what arrived, what the rules raised and how the responder answered.

mod captured;
mod producers;
mod risk;
mod sigma;
mod targets;

use std::time::Duration;

use clap::Args;

use crate::Server;
use crate::cli::{ServerArgs, humantime_duration};
use crate::query::OutputFormat;
use crate::simulate::runner::Pace;
use crate::simulate::senders::Sender;
use crate::simulate::{Scenario, SimConfig, Simulator};

#[derive(Args)]
pub struct DemoArgs {
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
}

/// Waits until `done` holds, checking every 50 ms, for at most 30 s (then says so and
/// goes on: the demo shows what there is).
async fn settle(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        if std::time::Instant::now() > deadline {
            println!("  (still waiting for {what} after 30 s; showing what there is)");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The demo: server plus simulator with every attack, then what arrived.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let DemoArgs {
        server,
        duration,
        rate,
        exit,
        sink,
    } = args;
    let mut config = server.load()?;
    let storage = config.storage.clone();
    let _own_sink = targets::demo_targets(&mut config, sink).await?;
    // A sign-in token for this run, unless one is configured.
    let demo_token = (config.api.tokens.is_empty() && std::env::var("CORDON_ADMIN_TOKEN").is_err()).then(|| {
        let token = format!("demo-{}", uuid::Uuid::new_v4().simple());
        config.api.tokens.push(crate::api::TokenConfig {
            name: "demo".into(),
            role: crate::api::Role::Admin,
            token: Some(token.clone()),
            token_env: None,
        });
        token
    });
    let producers = producers::demo_producers(&mut config);
    sigma::with_sigma_rules(&mut config).await?;
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
        start_unix_nano: cordon_schemas::time::now_nanos(),
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
    let report = crate::simulate::runner::run(sim, &mut sender, 200, Pace::Realtime, |report| {
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
    producers::send_fast_clock_host(&mut sender).await?;
    if let Some(producers) = &producers {
        producers::send_spoofed_events(&format!("http://{}", server.grpc_addr), &producers.laptop).await?;
    }
    if let Some(producers) = &producers {
        let http = format!("http://{}", server.http_addr);
        let (logs, spans) = captured::replay_claude_code(&http, &producers.laptop).await?;
        println!(
            "  Claude Code's own export (the real CLI's, captured: its Bash tool ran curl in bypass mode; it names no host): {logs} log events and {spans} spans over OTLP/HTTP JSON with wks-0042's credential, mapped to process.start, agent.tool_call and agent.session"
        );
        producers::send_falco_alert(&http, &producers.laptop).await?;
        let spans = captured::replay_spans(&http, &producers.laptop).await?;
        println!(
            "  an agent framework's GenAI spans (OpenAI Agents SDK, OpenTelemetry's instrumentation) and an MCP client's and server's spans (MCP Python SDK), captured: {spans} spans over OTLP/HTTP protobuf, the fetch tool mapped to a network.flow, the MCP tools/call to an agent.tool_call"
        );
    }
    let points = producers::send_agent_metrics(
        &format!("http://{}", server.grpc_addr),
        producers.as_ref().map(|producers| producers.collector.as_str()),
    )
    .await?;
    println!(
        "  an agent's metrics (claude_code.token.usage, {points} points) were accepted and counted, not stored: cordon_otlp_metric_points on /metrics"
    );
    let summary = crate::query::live(
        server.ingestor.store(),
        "SELECT event_name, count(*) AS events, count(DISTINCT host_id) AS hosts, min(time) AS first, max(time) AS last \
         FROM events GROUP BY event_name ORDER BY events DESC",
        512 << 20,
    )
    .await?;
    println!(
        "what arrived (cordon query \"SELECT ... FROM events\"):\n{}",
        crate::query::render(&summary, OutputFormat::Table)?
    );
    let provenance = crate::query::live(
        server.ingestor.store(),
        "SELECT transport, producer, tls, count(*) AS events FROM events GROUP BY 1, 2, 3 ORDER BY events DESC",
        512 << 20,
    )
    .await?;
    println!(
        "how it arrived (columns transport, producer, tls on every event):\n{}",
        crate::query::render(&provenance, OutputFormat::Table)?
    );
    // Every acknowledged event was queued for the rules as it was stored; the queue is
    // empty once their alerts are stored too.
    settle("the rules to finish the last events", || {
        server.detections.metrics.queued_events.get() == 0
    })
    .await;
    let alerts = server
        .detections
        .alerts
        .list(&cordon_detections::alerts::AlertFilter::default())?;
    println!(
        "alerts raised (cordon alerts list):\n{}",
        crate::cli::alerts::render_alerts(&alerts)
    );
    risk::print_entities_and_signals(&server, &alerts).await?;
    let flagged = crate::query::live(
        server.ingestor.store(),
        "SELECT host_id, count(*) AS events, max(CAST(attributes['cordon.clock_ahead_seconds'] AS BIGINT)) AS seconds_ahead \
         FROM events WHERE attributes['cordon.clock_ahead_seconds'] IS NOT NULL GROUP BY host_id",
        512 << 20,
    )
    .await?;
    println!(
        "events stored with a clock ahead of their arrival (attributes['cordon.clock_ahead_seconds']):\n{}",
        crate::query::render(&flagged, OutputFormat::Table)?
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
    settle("the responses to be delivered", || !unsettled(&server.responder)).await;
    let actions = server
        .responder
        .list(&cordon_responder::store::ActionFilter::default())?;
    println!(
        "responses (cordon actions list):\n{}",
        crate::cli::actions::render_actions(&actions)
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
        crate::server::shutdown_signal().await;
    }
    server.stop().await
}
