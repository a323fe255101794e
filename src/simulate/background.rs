//! Benign agent activity. It is shaped so that no built-in rule should fire on it: denies
//! and confidential reads are paced per host, uploads go to approved storage, no
//! proof-of-possession fails, tools are the allowed ones. It still has the near misses
//! a rule must not trip on: user-run curl, an allowed agent running curl, flows to
//! harmless unapproved hosts, occasional denies and confidential reads.

use cordon_schemas::FlatEvent;
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

use super::agents::{Session, ToolCall};
use super::catalog::*;
use super::events::*;
use super::world::{Agent, BUILD_AGENT, Host};

const MINUTE: i64 = 60_000_000_000;

/// Per-host pacing of the activity that rules count.
#[derive(Default, Clone)]
pub struct Pacing {
    last_deny: Option<i64>,
    last_confidential: Option<i64>,
    /// The next event number of the host's Claude Code session.
    claude_sequence: i64,
}

fn due(last: &mut Option<i64>, now: i64, every: i64) -> bool {
    if last.is_some_and(|last| now - last < every) {
        return false;
    }
    *last = Some(now);
    true
}

/// One step of benign activity on `host` at `time`: one event, or two that belong together.
pub fn step(rng: &mut ChaCha8Rng, time: i64, host: &Host, pacing: &mut Pacing) -> Vec<FlatEvent> {
    let agent: &Agent = host.agents.choose(rng).expect("every host has an agent");
    let roll: f64 = rng.random();
    match roll {
        r if r < 0.28 => vec![read_document(rng, time, host, agent, pacing)],
        r if r < 0.32 => vec![broker_request(
            rng,
            time,
            host,
            agent,
            BrokerRequest {
                operation: "file.list",
                decision: "allow",
                reason: "workspace",
                path: Some(home(host, "Documents/projects")),
                classification: Some("internal"),
                ..Default::default()
            },
        )],
        r if r < 0.50 => {
            let destination = *APPROVED_DESTINATIONS.choose(rng).expect("listed");
            let bytes = rng.random_range(500..200_000);
            vec![network_flow(
                rng,
                time,
                host,
                Some(agent),
                destination,
                bytes,
                &agent.executable,
            )]
        }
        r if r < 0.52 => {
            // Software updates and docs sites: not approved, harmless, no agent involved.
            let destination = *UNAPPROVED_HARMLESS.choose(rng).expect("listed");
            let bytes = rng.random_range(500..20_000);
            vec![network_flow(rng, time, host, None, destination, bytes, "updater")]
        }
        r if r < 0.56 => {
            let path = home(host, INTERNAL_DOCS.choose(rng).expect("listed"));
            let bytes = rng.random_range(10_000..3_000_000);
            vec![broker_request(
                rng,
                time,
                host,
                agent,
                BrokerRequest {
                    operation: "net.upload",
                    decision: "allow",
                    reason: "approved destination",
                    path: Some(path),
                    classification: Some("internal"),
                    bytes: Some(bytes),
                    destination: Some("corp.sharepoint.com"),
                },
            )]
        }
        r if r < 0.66 => {
            let destination = APPROVED_DESTINATIONS.choose(rng).expect("listed").0;
            let broker = broker_request(
                rng,
                time,
                host,
                agent,
                BrokerRequest {
                    operation: "net.connect",
                    decision: "allow",
                    reason: "approved destination",
                    destination: Some(destination),
                    ..Default::default()
                },
            );
            let decision = policy_decision_for(&broker, host, agent);
            vec![broker, decision]
        }
        r if r < 0.68 && due(&mut pacing.last_deny, time, 2 * MINUTE) => {
            // An occasional deny: at most one a host every two minutes.
            let broker = broker_request(
                rng,
                time,
                host,
                agent,
                BrokerRequest {
                    operation: "secret.get",
                    decision: "deny",
                    reason: "secret not in agent scope",
                    ..Default::default()
                },
            );
            let decision = policy_decision_for(&broker, host, agent);
            vec![broker, decision]
        }
        r if r < 0.78 => {
            let path = home(host, INTERNAL_DOCS.choose(rng).expect("listed"));
            let executable = ["libreoffice", "code", "evince"][rng.random_range(0..3)];
            vec![file_access(rng, time, host, path, "internal", executable)]
        }
        r if r < 0.84 => {
            let tool = *AGENT_TOOLS.choose(rng).expect("listed");
            vec![process_start(rng, time, host, Some(agent), tool, &agent.executable)]
        }
        r if r < 0.86 => {
            // The user runs curl in a terminal: not agent-caused.
            let tool = ("curl", "/usr/bin/curl", "curl -sI https://github.com");
            vec![process_start(rng, time, host, None, tool, "bash")]
        }
        r if r < 0.87 && agent.name == BUILD_AGENT.0 => {
            // The build agent is granted curl by the allowlist.
            let tool = ("curl", "/usr/bin/curl", "curl -sSfL https://pypi.org/simple/requests/");
            vec![process_start(rng, time, host, Some(agent), tool, &agent.executable)]
        }
        r if r < 0.92 => {
            let action = if rng.random_bool(0.8) { "refresh" } else { "issue" };
            vec![token(rng, time, host, agent, action)]
        }
        r if r < 0.97 => vec![clipboard(rng, time, host, agent, None, "allow")],
        r if r < 0.98 => vec![dlp_match(rng, time, host, None, "print", "alert", "fp-handbook")],
        r if r < 0.99 => claude_code_at_work(rng, time, host, pacing),
        _ => vec![read_document(rng, time, host, agent, pacing)],
    }
}

/// A developer's Claude Code session going about its work, in Claude Code's own
/// telemetry: model calls, reading source, running git.
fn claude_code_at_work(rng: &mut ChaCha8Rng, time: i64, host: &Host, pacing: &mut Pacing) -> Vec<FlatEvent> {
    let mut session = Session::resume(host, 0, pacing.claude_sequence);
    let id = format!("toolu_{}", super::world::hex(rng, 12));
    let events = match rng.random_range(0..3) {
        0 => vec![session.claude_api_request(time, rng.random_range(800..20_000))],
        1 => {
            let path = home(host, "src/app/main.rs");
            vec![session.claude_result(time, &ToolCall::file("Read", id, &path), 2)]
        }
        _ => {
            let shell = ToolCall::shell(id, "git status --short");
            vec![
                session.claude_decision(time, &shell, "accept", "config", "default"),
                session.claude_result(time, &shell, 38),
            ]
        }
    };
    pacing.claude_sequence = session.sequence();
    events
}

fn read_document(rng: &mut ChaCha8Rng, time: i64, host: &Host, agent: &Agent, pacing: &mut Pacing) -> FlatEvent {
    // A confidential document at most once a minute a host, and small: ten reads and
    // 5 MB in ten minutes at the most, under the sensitive-read thresholds.
    if rng.random_bool(0.1) && due(&mut pacing.last_confidential, time, MINUTE) {
        let path = home(host, CONFIDENTIAL_DOCS.choose(rng).expect("listed"));
        let bytes = rng.random_range(20_000..500_000);
        return allowed_read(rng, time, (host, agent), path, "confidential", bytes, "user owns file");
    }
    let classification = if rng.random_bool(0.3) { "public" } else { "internal" };
    let path = home(host, INTERNAL_DOCS.choose(rng).expect("listed"));
    let bytes = rng.random_range(1_000..2_000_000);
    allowed_read(rng, time, (host, agent), path, classification, bytes, "workspace")
}
