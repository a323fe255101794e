//! OTLP/gRPC to durable storage, against the bare protobuf decode of the same payloads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::{BufMut, Bytes};
use cordon_ingest::otlp::grpc::EXPORT_PATH;
use cordon_schemas::otlp::events_to_request;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use crate::config::Config;
use crate::ingest_stage::IngestStage;
use crate::server::Server;
use crate::simulate::{SimConfig, Simulator};

#[derive(Debug, Clone, clap::Args)]
pub struct IngestBenchOptions {
    #[arg(long, default_value_t = 1_000_000)]
    pub events: usize,
    /// Records per request.
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Keep every event in memory during the run: measures the acknowledgement path alone,
    /// without Parquet writes competing for the cores.
    #[arg(long)]
    pub defer_parquet: bool,
    /// Rounds against the ingest stage alone (sources and storage), each on a fresh
    /// one; the median is reported. 0 skips this figure.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Rounds against the whole server (detections, responder and API running beside
    /// ingest on the same cores). 0 skips this figure.
    #[arg(long, default_value_t = 3)]
    pub server_rounds: usize,
    /// Rounds of the same requests as OTLP/HTTP JSON (HTTP/1.1, keep-alive), against
    /// the ingest stage alone. 0 skips this figure.
    #[arg(long, default_value_t = 3)]
    pub http_json_rounds: usize,
    /// HTTP/2 connections the requests are spread over (4 measured slower than 1 here).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Events the whole server's detection queue holds before storage waits
    /// (`detections.queue_events`; default: its default): its trade of memory against
    /// acknowledgement pace.
    #[arg(long)]
    pub queue_events: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct IngestBenchReport {
    pub events: usize,
    pub payload_bytes: usize,
    pub decode_one_core_eps: f64,
    pub decode_all_cores_eps: f64,
    /// Cordon's own protobuf-to-Arrow conversion of the same payloads, one core.
    pub convert_one_core_eps: f64,
    /// The ingest stage alone: sources and storage.
    pub stage: Option<Measured>,
    /// The whole server: detections, responder and API running beside ingest.
    pub server: Option<Measured>,
    /// The ingest stage alone, the same requests as OTLP/HTTP JSON.
    pub http_json: Option<Measured>,
    pub json_bytes: usize,
    pub json_decode_one_core_eps: f64,
    /// Cordon's JSON-to-Arrow conversion of the same bodies, one core.
    pub json_convert_one_core_eps: f64,
    pub concurrency: usize,
    pub connections: usize,
    pub cores: usize,
    /// The whole server's detection queue bound, in events.
    pub queue_events: usize,
}

/// The median round of one target, and the spread.
#[derive(Debug, Clone)]
pub struct Measured {
    pub eps: f64,
    pub min_eps: f64,
    pub max_eps: f64,
    pub rounds: usize,
    pub seconds: f64,
    pub acknowledged_seconds: f64,
    /// CPU time the whole process used in the round (user and system; the client too).
    pub cpu_seconds: f64,
    pub stored: u64,
    pub wal_commits: u64,
    /// Seconds the server spent per step, summed over requests.
    pub stages: Vec<(&'static str, f64)>,
}

impl Measured {
    fn median_of(mut rounds: Vec<Round>) -> Option<Measured> {
        if rounds.is_empty() {
            return None;
        }
        rounds.sort_by(|a, b| a.eps.total_cmp(&b.eps));
        let (min_eps, max_eps, count) = (rounds[0].eps, rounds[rounds.len() - 1].eps, rounds.len());
        let median = rounds.swap_remove(count / 2);
        Some(Measured {
            eps: median.eps,
            min_eps,
            max_eps,
            rounds: count,
            seconds: median.seconds,
            acknowledged_seconds: median.acknowledged_seconds,
            cpu_seconds: median.cpu_seconds,
            stored: median.stored,
            wal_commits: median.wal_commits,
            stages: median.stages,
        })
    }
}

impl IngestBenchReport {
    /// The headline figure: the ingest stage alone if it was measured.
    pub fn ingest_eps(&self) -> f64 {
        self.stage
            .as_ref()
            .or(self.server.as_ref())
            .map_or(0.0, |measured| measured.eps)
    }

    fn write_target(&self, f: &mut std::fmt::Formatter<'_>, label: &str, measured: &Measured) -> std::fmt::Result {
        writeln!(
            f,
            "  {label} {:>10.0} events/s  median of {} rounds ({:.0} to {:.0}); {} stored, {} WAL group commits",
            measured.eps, measured.rounds, measured.min_eps, measured.max_eps, measured.stored, measured.wal_commits
        )?;
        if measured.seconds > measured.acknowledged_seconds + 1e-3 {
            writeln!(
                f,
                "    to the last event evaluated by every rule; every request acknowledged after {:.2} of its {:.2} s ({:.0} events/s)",
                measured.acknowledged_seconds,
                measured.seconds,
                self.events as f64 / measured.acknowledged_seconds
            )?;
        }
        writeln!(
            f,
            "    ratio to decode: 1 core {:.1}%, {} cores {:.1}%",
            100.0 * measured.eps / self.decode_one_core_eps,
            self.cores,
            100.0 * measured.eps / self.decode_all_cores_eps
        )?;
        write!(f, "    server time per event:")?;
        for (stage, seconds) in &measured.stages {
            write!(f, " {stage} {:.2} us,", seconds * 1e6 / self.events as f64)?;
        }
        writeln!(
            f,
            " of {:.2} us wall time per event; {:.2} us of CPU per event (whole process, client included)",
            measured.seconds * 1e6 / self.events as f64,
            measured.cpu_seconds * 1e6 / self.events as f64
        )
    }
}

impl std::fmt::Display for IngestBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "ingest benchmark: {} events in requests of 1,000 records ({:.1} MB of OTLP protobuf), {} cores, {} requests in flight on {} connections; whole server's detection queue {} events",
            self.events,
            self.payload_bytes as f64 / 1e6,
            self.cores,
            self.concurrency,
            self.connections,
            self.queue_events
        )?;
        writeln!(
            f,
            "  protobuf decode, 1 core              {:>10.0} events/s",
            self.decode_one_core_eps
        )?;
        writeln!(
            f,
            "  protobuf decode, {} cores             {:>10.0} events/s",
            self.cores, self.decode_all_cores_eps
        )?;
        writeln!(
            f,
            "  protobuf -> Arrow (cordon), 1 core   {:>10.0} events/s",
            self.convert_one_core_eps
        )?;
        if let Some(stage) = &self.stage {
            self.write_target(f, "OTLP/gRPC -> durable storage, ingest stage alone", stage)?;
        }
        if let Some(server) = &self.server {
            self.write_target(f, "OTLP/gRPC -> durable storage, whole server      ", server)?;
        }
        if let Some(json) = &self.http_json {
            writeln!(
                f,
                "  the same requests as OTLP/HTTP JSON: {:.1} MB; JSON decode (serde into the OTLP types), 1 core {:>10.0} events/s",
                self.json_bytes as f64 / 1e6,
                self.json_decode_one_core_eps
            )?;
            writeln!(
                f,
                "  JSON -> Arrow (cordon, strings borrowed), 1 core {:>10.0} events/s",
                self.json_convert_one_core_eps
            )?;
            self.write_target(f, "OTLP/HTTP JSON -> durable storage, stage alone  ", json)?;
            if let Some(grpc) = &self.stage {
                writeln!(
                    f,
                    "    per event against OTLP/gRPC (stage alone): {:.2}x the wall time, {:.2}x the CPU time",
                    grpc.eps / json.eps,
                    json.cpu_seconds / grpc.cpu_seconds.max(1e-9)
                )?;
            }
        }
        Ok(())
    }
}

/// Sends pre-encoded requests, so the client spends no time encoding (and tests can
/// send bytes that are not protobuf at all).
#[derive(Clone, Copy, Default)]
pub struct PreEncoded;
pub struct PassEncoder;
pub struct ResponseDecoder;

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = ExportLogsServiceResponse;
    type Encoder = PassEncoder;
    type Decoder = ResponseDecoder;
    fn encoder(&mut self) -> PassEncoder {
        PassEncoder
    }
    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

impl Encoder for PassEncoder {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = ExportLogsServiceResponse;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, tonic::Status> {
        ExportLogsServiceResponse::decode(src)
            .map(Some)
            .map_err(|error| tonic::Status::internal(error.to_string()))
    }
}

/// Simulated background telemetry, encoded as OTLP requests of `batch` records.
pub fn payloads(events: usize, batch: usize) -> Vec<Bytes> {
    let duration = Duration::from_secs_f64(events as f64 / 100_000.0);
    // Ending a minute ago: times the door takes (limits.max_event_age) whenever the
    // benchmark runs.
    let now = cordon_schemas::time::now_nanos();
    let mut simulator = Simulator::new(SimConfig {
        hosts: 500,
        rate: 100_000.0,
        duration,
        start_unix_nano: now - duration.as_nanos() as i64 - 60_000_000_000,
        ..SimConfig::default()
    });
    let mut out = Vec::new();
    let mut produced = 0;
    while produced < events {
        let mut chunk = simulator.next_events(i64::MAX, batch.min(events - produced));
        if chunk.is_empty() {
            break;
        }
        chunk.truncate(batch);
        produced += chunk.len();
        out.push(Bytes::from(events_to_request(&chunk).encode_to_vec()));
    }
    out
}

fn decode_all(payloads: &[Bytes]) -> usize {
    payloads
        .iter()
        .map(|payload| {
            let request = ExportLogsServiceRequest::decode(payload.clone()).expect("payloads decode");
            cordon_schemas::otlp::count_records(&request)
        })
        .sum()
}

/// User and system CPU time of this process so far. A steadier measure than wall time on
/// a noisy machine: other processes' load lengthens a round but not its CPU time.
fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// What one round of sending every payload to a fresh server measured.
struct Round {
    eps: f64,
    seconds: f64,
    /// When the last request was acknowledged (before detections finished with them).
    acknowledged_seconds: f64,
    cpu_seconds: f64,
    stored: u64,
    wal_commits: u64,
    stages: Vec<(&'static str, f64)>,
}

/// What a round sends to: the ingest stage alone, or the whole server with detections,
/// responder and API running beside it on the same cores.
enum Target {
    Stage(Box<IngestStage>),
    Server(Box<Server>),
}

impl Target {
    async fn start(config: Config, whole_server: bool) -> anyhow::Result<Target> {
        Ok(if whole_server {
            Target::Server(Box::new(Server::start(config).await?))
        } else {
            Target::Stage(Box::new(IngestStage::start(&config).await?))
        })
    }

    fn http_addr(&self) -> std::net::SocketAddr {
        match self {
            Target::Stage(stage) => stage.http_addr,
            Target::Server(server) => server.http_addr,
        }
    }

    fn grpc_addr(&self) -> std::net::SocketAddr {
        match self {
            Target::Stage(stage) => stage.grpc_addr,
            Target::Server(server) => server.grpc_addr,
        }
    }

    fn metrics(&self) -> cordon_ingest::IngestMetrics {
        match self {
            Target::Stage(stage) => stage.metrics.clone(),
            Target::Server(server) => server.metrics.clone(),
        }
    }

    async fn stop(self) -> anyhow::Result<()> {
        match self {
            Target::Stage(stage) => stage.stop().await,
            Target::Server(server) => server.stop().await,
        }
    }
}

/// How a round's requests travel.
#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Grpc,
    HttpJson,
}

async fn ingest_round(
    payloads: &Arc<Vec<Bytes>>,
    events: usize,
    options: &IngestBenchOptions,
    whole_server: bool,
    protocol: Protocol,
) -> anyhow::Result<Round> {
    let data_dir = tempfile::tempdir().context("creating a scratch data directory")?;
    let mut config = Config::default();
    // The alerts the simulated traffic raises are recorded, not sent: no webhook target
    // is set up for a benchmark, and each try would log an error.
    config.responder.dry_run = true;
    config.otlp.grpc_listen = "127.0.0.1:0".parse()?;
    config.otlp.http_listen = "127.0.0.1:0".parse()?;
    config.storage.data_dir = data_dir.path().to_path_buf();
    config.storage.max_buffered_events = (options.events * 2).max(config.storage.max_buffered_events);
    config.detections.queue_events = options.queue_events.unwrap_or(config.detections.queue_events);
    if options.defer_parquet {
        config.storage.flush_max_events = options.events + 1;
        config.storage.flush_interval = Duration::from_secs(3600);
    }
    let server = Target::start(config, whole_server).await?;
    if protocol == Protocol::HttpJson {
        let started = Instant::now();
        let cpu_started = process_cpu_seconds();
        super::otlp_http::send_all(server.http_addr(), payloads.clone(), options.concurrency).await?;
        return finish_round(server, events, started, cpu_started).await;
    }
    let grpc_addr = server.grpc_addr();
    // Many endpoints send at once: spread the requests over several connections.
    let mut channels = Vec::new();
    for _ in 0..options.connections.max(1) {
        channels.push(Channel::from_shared(format!("http://{grpc_addr}"))?.connect().await?);
    }

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let cpu_started = process_cpu_seconds();
    let mut clients = Vec::new();
    for client in 0..options.concurrency.max(1) {
        let channel = &channels[client % channels.len()];
        let payloads = payloads.clone();
        let next = next.clone();
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(payload) = payloads.get(index) else {
                    return Ok::<(), anyhow::Error>(());
                };
                loop {
                    grpc.ready().await?;
                    let path = http::uri::PathAndQuery::from_static(EXPORT_PATH);
                    match grpc.unary(tonic::Request::new(payload.clone()), path, PreEncoded).await {
                        Ok(_) => break,
                        Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                            tokio::time::sleep(Duration::from_millis(20)).await
                        }
                        Err(status) => anyhow::bail!("export failed: {status}"),
                    }
                }
            }
        }));
    }
    for client in clients {
        client.await??;
    }
    finish_round(server, events, started, cpu_started).await
}

/// The round's figures once every request is acknowledged and, for the whole server,
/// every event evaluated by every rule (the engine's queue empty); stops the target.
async fn finish_round(server: Target, events: usize, started: Instant, cpu_started: f64) -> anyhow::Result<Round> {
    let acknowledged_seconds = started.elapsed().as_secs_f64();
    if let Target::Server(server) = &server {
        while server.detections.metrics.queued_events.get() > 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_seconds() - cpu_started;
    let metrics = server.metrics();
    let stages = ["convert", "store"]
        .map(|stage| (stage, metrics.stage_total(stage)))
        .to_vec();
    let stored = metrics.events_out.get();
    let wal_commits = metrics.wal_commits.get();
    server.stop().await?;
    Ok(Round {
        eps: events as f64 / seconds,
        seconds,
        acknowledged_seconds,
        cpu_seconds,
        stored,
        wal_commits,
        stages,
    })
}

pub async fn run(options: IngestBenchOptions) -> anyhow::Result<IngestBenchReport> {
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let payloads = Arc::new(payloads(options.events, options.batch));
    let events: usize = decode_all(&payloads);
    let payload_bytes = payloads.iter().map(Bytes::len).sum();

    let started = Instant::now();
    decode_all(&payloads);
    let decode_one_core_eps = events as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..cores {
        let payloads = payloads.clone();
        workers.push(std::thread::spawn(move || {
            let mine: Vec<Bytes> = payloads.iter().skip(worker).step_by(cores).cloned().collect();
            decode_all(&mine)
        }));
    }
    for worker in workers {
        worker.join().expect("decoder thread");
    }
    let decode_all_cores_eps = events as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    for payload in payloads.iter() {
        let mut builder = cordon_schemas::EventBatchBuilder::with_capacity(options.batch);
        cordon_schemas::otlp_wire::convert_encoded_request(payload, 0, &mut builder).expect("payloads convert");
        std::hint::black_box(builder.finish());
    }
    let convert_one_core_eps = events as f64 / started.elapsed().as_secs_f64();

    let mut stage_rounds = Vec::new();
    for _ in 0..options.rounds {
        stage_rounds.push(ingest_round(&payloads, events, &options, false, Protocol::Grpc).await?);
    }
    let mut server_rounds = Vec::new();
    for _ in 0..options.server_rounds {
        server_rounds.push(ingest_round(&payloads, events, &options, true, Protocol::Grpc).await?);
    }
    // Built only when measured: serialising a million events to JSON takes seconds.
    let json = Arc::new(if options.http_json_rounds > 0 {
        super::otlp_http::json_payloads(&payloads)
    } else {
        Vec::new()
    });
    let json_bytes = json.iter().map(Bytes::len).sum();
    let started = Instant::now();
    super::otlp_http::decode_all(&json);
    let json_decode_one_core_eps = events as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    super::otlp_http::convert_all(&json);
    let json_convert_one_core_eps = events as f64 / started.elapsed().as_secs_f64();
    let mut json_rounds = Vec::new();
    for _ in 0..options.http_json_rounds {
        json_rounds.push(ingest_round(&json, events, &options, false, Protocol::HttpJson).await?);
    }
    Ok(IngestBenchReport {
        events,
        payload_bytes,
        decode_one_core_eps,
        decode_all_cores_eps,
        convert_one_core_eps,
        stage: Measured::median_of(stage_rounds),
        server: Measured::median_of(server_rounds),
        http_json: Measured::median_of(json_rounds),
        json_bytes,
        json_decode_one_core_eps,
        json_convert_one_core_eps,
        concurrency: options.concurrency.max(1),
        connections: options.connections.max(1),
        cores,
        queue_events: options
            .queue_events
            .unwrap_or(cordon_detections::service::DetectionConfig::default().queue_events),
    })
}
