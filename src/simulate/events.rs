//! Builders for the contract's event kinds, as the endpoint producers would send them.

use cordon_schemas::FlatEvent;
use cordon_schemas::fields::attr;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::world::{Agent, Host, hex};

/// Which endpoint component produced an event (`service.name`).
pub const BROKER: &str = "agent-broker";
pub const OPA: &str = "opa";
pub const EBPF: &str = "falco";
pub const IDP: &str = "token-service";
pub const DLP: &str = "endpoint-dlp";

/// An event with the attributes every kind carries.
pub fn base(time: i64, kind: &str, host: &Host, agent: Option<&Agent>, service: &str) -> FlatEvent {
    let mut event = FlatEvent::new(time, kind, &host.id);
    event
        .set(attr::HOST_NAME, host.name.clone())
        .set(attr::SERVICE_NAME, service)
        .set(attr::USER_NAME, host.user.clone());
    if let Some(agent) = agent {
        event
            .set(attr::AGENT_ID, agent.id.clone())
            .set(attr::AGENT_NAME, agent.name.clone());
    }
    event
}

pub fn home(host: &Host, path: &str) -> String {
    format!("/home/{}/{}", host.user, path)
}

#[derive(Default)]
pub struct BrokerRequest<'a> {
    pub operation: &'a str,
    pub decision: &'a str,
    pub reason: &'a str,
    pub path: Option<String>,
    pub classification: Option<&'a str>,
    pub bytes: Option<i64>,
    pub destination: Option<&'a str>,
}

pub fn broker_request(
    rng: &mut ChaCha8Rng,
    time: i64,
    host: &Host,
    agent: &Agent,
    request: BrokerRequest<'_>,
) -> FlatEvent {
    let mut event = base(time, "agent.broker.request", host, Some(agent), BROKER);
    event
        .set(attr::BROKER_OPERATION, request.operation)
        .set(attr::POLICY_DECISION, request.decision)
        .set(attr::POLICY_REASON, request.reason)
        .set(attr::POLICY_DECISION_ID, format!("dec-{}", hex(rng, 8)));
    if let Some(path) = request.path {
        event
            .set(attr::FILE_PATH, path)
            .set(attr::FILE_HASH_SHA256, hex(rng, 32));
    }
    if let Some(classification) = request.classification {
        event.set(attr::DATA_CLASSIFICATION, classification);
    }
    if let Some(bytes) = request.bytes {
        event.set_int(attr::FILE_BYTES, bytes);
    }
    if let Some(destination) = request.destination {
        event.set(attr::DESTINATION_ADDRESS, destination);
    }
    event
}

/// An allowed read of a file through the broker.
pub fn allowed_read(
    rng: &mut ChaCha8Rng,
    time: i64,
    (host, agent): (&Host, &Agent),
    path: String,
    classification: &str,
    bytes: i64,
    reason: &str,
) -> FlatEvent {
    let read = BrokerRequest {
        operation: "file.read",
        decision: "allow",
        reason,
        path: Some(path),
        classification: Some(classification),
        bytes: Some(bytes),
        ..Default::default()
    };
    broker_request(rng, time, host, agent, read)
}

/// The OPA decision log entry behind a broker request, sharing its decision id.
pub fn policy_decision_for(broker: &FlatEvent, host: &Host, agent: &Agent) -> FlatEvent {
    let mut event = base(broker.time_unix_nano, "policy.decision", host, Some(agent), OPA);
    let text = |name: &str| broker.text(name).unwrap_or_default().to_string();
    event
        .set(attr::POLICY_DECISION_ID, text(attr::POLICY_DECISION_ID))
        .set(attr::POLICY_PATH, "cowork/broker/allow")
        .set(attr::POLICY_DECISION, text(attr::POLICY_DECISION))
        .set(attr::POLICY_REASON, text(attr::POLICY_REASON))
        .set(attr::POLICY_INPUT_ACTION, text(attr::BROKER_OPERATION));
    if let Some(path) = broker.text(attr::FILE_PATH) {
        event.set(attr::POLICY_INPUT_PATH, path);
    }
    event
}

pub fn network_flow(
    rng: &mut ChaCha8Rng,
    time: i64,
    host: &Host,
    agent: Option<&Agent>,
    destination: (&str, &str, &str),
    bytes_sent: i64,
    executable: &str,
) -> FlatEvent {
    let (name, ip, category) = destination;
    let mut event = base(time, "network.flow", host, agent, EBPF);
    event
        .set(attr::DESTINATION_ADDRESS, name)
        .set(attr::DESTINATION_IP, ip)
        .set_int(attr::DESTINATION_PORT, 443)
        .set(attr::TLS_SERVER_NAME, name)
        .set(attr::NETWORK_TRANSPORT, "tcp")
        .set_int(attr::BYTES_SENT, bytes_sent)
        .set_int(attr::BYTES_RECEIVED, rng.random_range(2_000..400_000))
        .set(attr::DESTINATION_CATEGORY, category)
        .set_int(attr::PROCESS_PID, rng.random_range(2_000..60_000))
        .set(attr::PROCESS_EXECUTABLE_NAME, executable);
    event
}

pub fn process_start(
    rng: &mut ChaCha8Rng,
    time: i64,
    host: &Host,
    agent: Option<&Agent>,
    tool: (&str, &str, &str),
    parent: &str,
) -> FlatEvent {
    let (name, path, command_line) = tool;
    let mut event = base(time, "process.start", host, agent, EBPF);
    event
        .set_int(attr::PROCESS_PID, rng.random_range(2_000..60_000))
        .set_int(attr::PROCESS_PARENT_PID, rng.random_range(1_000..2_000))
        .set(attr::PROCESS_EXECUTABLE_NAME, name)
        .set(attr::PROCESS_EXECUTABLE_PATH, path)
        .set(attr::PROCESS_COMMAND_LINE, command_line)
        .set(attr::PROCESS_PARENT_EXECUTABLE_NAME, parent);
    event
}

pub fn token(rng: &mut ChaCha8Rng, time: i64, host: &Host, agent: &Agent, action: &str) -> FlatEvent {
    let mut event = base(time, "credential.token", host, Some(agent), IDP);
    event
        .set(attr::CREDENTIAL_ACTION, action)
        .set(attr::CREDENTIAL_TOKEN_ID, agent.token_id.clone())
        .set(attr::CREDENTIAL_SCOPE, "files:read net:egress")
        .set(attr::CREDENTIAL_BINDING, "dpop")
        .set_int(attr::CREDENTIAL_EXPIRES_IN_S, [300, 600, 900][rng.random_range(0..3)]);
    event
}

pub fn clipboard(
    rng: &mut ChaCha8Rng,
    time: i64,
    host: &Host,
    agent: &Agent,
    fingerprint: Option<&str>,
    decision: &str,
) -> FlatEvent {
    let mut event = base(time, "clipboard.write", host, Some(agent), BROKER);
    event
        .set_int(attr::CLIPBOARD_BYTES, rng.random_range(20..20_000))
        .set(attr::CLIPBOARD_HASH_SHA256, hex(rng, 32))
        .set(attr::POLICY_DECISION, decision);
    if let Some(fingerprint) = fingerprint {
        event.set(attr::DLP_FINGERPRINT, fingerprint);
    }
    event
}

pub fn dlp_match(
    rng: &mut ChaCha8Rng,
    time: i64,
    host: &Host,
    agent: Option<&Agent>,
    channel: &str,
    action: &str,
    fingerprint: &str,
) -> FlatEvent {
    let mut event = base(time, "dlp.match", host, agent, DLP);
    event
        .set(attr::DLP_POLICY, "finance-confidential")
        .set(attr::DLP_FINGERPRINT, fingerprint)
        .set(attr::DLP_CHANNEL, channel)
        .set(attr::DLP_ACTION, action)
        .set(attr::FILE_HASH_SHA256, hex(rng, 32));
    event
}

pub fn file_access(
    rng: &mut ChaCha8Rng,
    time: i64,
    host: &Host,
    path: String,
    classification: &str,
    executable: &str,
) -> FlatEvent {
    let mut event = base(time, "file.access", host, None, EBPF);
    event
        .set(
            attr::FILE_OPERATION,
            ["read", "read", "read", "write"][rng.random_range(0..4)],
        )
        .set(attr::FILE_PATH, path)
        .set_int(attr::FILE_BYTES, rng.random_range(500..400_000))
        .set(attr::FILE_HASH_SHA256, hex(rng, 32))
        .set(attr::DATA_CLASSIFICATION, classification)
        .set_int(attr::PROCESS_PID, rng.random_range(2_000..60_000))
        .set(attr::PROCESS_EXECUTABLE_NAME, executable);
    event
}
