//! Field names of the contract (schemas/CONTRACT.md) and the typed columns they map to.
//!
//! A contract attribute `a.b.c` becomes the column `a_b_c` so that rule SQL needs no
//! quoting. The table below is the one place that lists them; the Arrow schema, the
//! OTLP and flat-JSON conversions and the docs are all derived from it.

/// Attribute names the contract fixes (section 2 and 4).
pub mod attr {
    pub const HOST_ID: &str = "host.id";
    pub const HOST_NAME: &str = "host.name";
    pub const SERVICE_NAME: &str = "service.name";
    pub const EVENT_NAME: &str = "event.name";
    pub const EVENT_ID: &str = "event.id";
    pub const EVENT_SEQUENCE: &str = "event.sequence";
    pub const USER_NAME: &str = "user.name";
    pub const AGENT_ID: &str = "gen_ai.agent.id";
    pub const AGENT_NAME: &str = "gen_ai.agent.name";
    pub const SIGNATURE_KEY_ID: &str = "signature.key_id";
    pub const SIGNATURE_ED25519: &str = "signature.ed25519";
    pub const TIME: &str = "time";

    pub const BROKER_OPERATION: &str = "broker.operation";
    pub const FILE_PATH: &str = "file.path";
    pub const FILE_HASH_SHA256: &str = "file.hash.sha256";
    pub const FILE_BYTES: &str = "file.bytes";
    pub const DATA_CLASSIFICATION: &str = "data.classification";
    pub const DESTINATION_ADDRESS: &str = "destination.address";
    pub const POLICY_DECISION: &str = "policy.decision";
    pub const POLICY_REASON: &str = "policy.reason";
    pub const POLICY_DECISION_ID: &str = "policy.decision_id";
    pub const BROKER_REDACTION: &str = "broker.redaction";
    pub const POLICY_PATH: &str = "policy.path";
    pub const POLICY_INPUT_ACTION: &str = "policy.input.action";
    pub const POLICY_INPUT_PATH: &str = "policy.input.path";
    pub const FILE_OPERATION: &str = "file.operation";
    pub const PROCESS_PID: &str = "process.pid";
    pub const PROCESS_EXECUTABLE_NAME: &str = "process.executable.name";
    pub const DESTINATION_IP: &str = "destination.ip";
    pub const DESTINATION_PORT: &str = "destination.port";
    pub const TLS_SERVER_NAME: &str = "tls.client.server_name";
    pub const NETWORK_TRANSPORT: &str = "network.transport";
    pub const BYTES_SENT: &str = "network.io.bytes_sent";
    pub const BYTES_RECEIVED: &str = "network.io.bytes_received";
    pub const DESTINATION_CATEGORY: &str = "destination.category";
    pub const PROCESS_PARENT_PID: &str = "process.parent_pid";
    pub const PROCESS_EXECUTABLE_PATH: &str = "process.executable.path";
    pub const PROCESS_COMMAND_LINE: &str = "process.command_line";
    pub const PROCESS_PARENT_EXECUTABLE_NAME: &str = "process.parent.executable.name";
    pub const CLIPBOARD_BYTES: &str = "clipboard.bytes";
    pub const CLIPBOARD_HASH_SHA256: &str = "clipboard.hash.sha256";
    pub const DLP_FINGERPRINT: &str = "dlp.fingerprint";
    pub const DLP_POLICY: &str = "dlp.policy";
    pub const DLP_CHANNEL: &str = "dlp.channel";
    pub const DLP_ACTION: &str = "dlp.action";
    pub const CREDENTIAL_ACTION: &str = "credential.action";
    pub const CREDENTIAL_TOKEN_ID: &str = "credential.token_id";
    pub const CREDENTIAL_SCOPE: &str = "credential.scope";
    pub const CREDENTIAL_BINDING: &str = "credential.binding";
    pub const CREDENTIAL_EXPIRES_IN_S: &str = "credential.expires_in_s";
    pub const CREDENTIAL_FAILURE_REASON: &str = "credential.failure_reason";

    // Agents' own telemetry (contract section 4, `agent.*` kinds): the keys that join a
    // session's events across producers, the tool, and the trace a span belongs to.
    pub const SESSION_ID: &str = "session.id";
    pub const TOOL_NAME: &str = "gen_ai.tool.name";
    pub const TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
    pub const TOOL_CATEGORY: &str = "agent.tool.category";
    pub const TOOL_DECISION: &str = "agent.tool.decision";
    pub const PERMISSION_MODE: &str = "agent.permission_mode";
    pub const URL_FULL: &str = "url.full";
    pub const MCP_SERVER: &str = "mcp.server.name";
    pub const TRACE_ID: &str = "trace.id";
    pub const SPAN_ID: &str = "span.id";
}

/// Column names of the fixed (non-attribute) part of the event table.
pub mod col {
    pub const TIME: &str = "time";
    pub const OBSERVED_TIME: &str = "observed_time";
    pub const RECEIVED_TIME: &str = "received_time";
    pub const TIME_ESTIMATED: &str = "time_estimated";
    pub const HOST_ID: &str = "host_id";
    pub const HOST_NAME: &str = "host_name";
    pub const SERVICE_NAME: &str = "service_name";
    pub const EVENT_NAME: &str = "event_name";
    pub const EVENT_ID: &str = "event_id";
    pub const SIGNATURE_STATUS: &str = "signature_status";
    /// Provenance (`provenance.rs`): how the event arrived, set by Cordon only.
    pub const TRANSPORT: &str = "transport";
    pub const PRODUCER: &str = "producer";
    pub const TLS: &str = "tls";
    pub const ATTRIBUTES: &str = "attributes";
}

/// The value type of a typed attribute column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Str,
    Int,
}

/// One contract attribute stored in a typed column.
#[derive(Debug, Clone, Copy)]
pub struct AttrField {
    pub attr: &'static str,
    pub column: &'static str,
    pub ty: FieldType,
}

const fn s(attr: &'static str, column: &'static str) -> AttrField {
    AttrField {
        attr,
        column,
        ty: FieldType::Str,
    }
}
const fn i(attr: &'static str, column: &'static str) -> AttrField {
    AttrField {
        attr,
        column,
        ty: FieldType::Int,
    }
}

/// Every attribute with a typed column, in column order. `host.id`, `event.name` and
/// `event.id` are not here: they have fixed columns with their own rules.
pub const ATTR_FIELDS: &[AttrField] = &[
    i(attr::EVENT_SEQUENCE, "event_sequence"),
    s(attr::USER_NAME, "user_name"),
    s(attr::AGENT_ID, "gen_ai_agent_id"),
    s(attr::AGENT_NAME, "gen_ai_agent_name"),
    s(attr::SIGNATURE_KEY_ID, "signature_key_id"),
    s(attr::BROKER_OPERATION, "broker_operation"),
    s(attr::FILE_PATH, "file_path"),
    s(attr::FILE_HASH_SHA256, "file_hash_sha256"),
    i(attr::FILE_BYTES, "file_bytes"),
    s(attr::DATA_CLASSIFICATION, "data_classification"),
    s(attr::DESTINATION_ADDRESS, "destination_address"),
    s(attr::POLICY_DECISION, "policy_decision"),
    s(attr::POLICY_REASON, "policy_reason"),
    s(attr::POLICY_DECISION_ID, "policy_decision_id"),
    s(attr::BROKER_REDACTION, "broker_redaction"),
    s(attr::POLICY_PATH, "policy_path"),
    s(attr::POLICY_INPUT_ACTION, "policy_input_action"),
    s(attr::POLICY_INPUT_PATH, "policy_input_path"),
    s(attr::FILE_OPERATION, "file_operation"),
    i(attr::PROCESS_PID, "process_pid"),
    s(attr::PROCESS_EXECUTABLE_NAME, "process_executable_name"),
    s(attr::DESTINATION_IP, "destination_ip"),
    i(attr::DESTINATION_PORT, "destination_port"),
    s(attr::TLS_SERVER_NAME, "tls_client_server_name"),
    s(attr::NETWORK_TRANSPORT, "network_transport"),
    i(attr::BYTES_SENT, "network_io_bytes_sent"),
    i(attr::BYTES_RECEIVED, "network_io_bytes_received"),
    s(attr::DESTINATION_CATEGORY, "destination_category"),
    i(attr::PROCESS_PARENT_PID, "process_parent_pid"),
    s(attr::PROCESS_EXECUTABLE_PATH, "process_executable_path"),
    s(attr::PROCESS_COMMAND_LINE, "process_command_line"),
    s(attr::PROCESS_PARENT_EXECUTABLE_NAME, "process_parent_executable_name"),
    i(attr::CLIPBOARD_BYTES, "clipboard_bytes"),
    s(attr::CLIPBOARD_HASH_SHA256, "clipboard_hash_sha256"),
    s(attr::DLP_FINGERPRINT, "dlp_fingerprint"),
    s(attr::DLP_POLICY, "dlp_policy"),
    s(attr::DLP_CHANNEL, "dlp_channel"),
    s(attr::DLP_ACTION, "dlp_action"),
    s(attr::CREDENTIAL_ACTION, "credential_action"),
    s(attr::CREDENTIAL_TOKEN_ID, "credential_token_id"),
    s(attr::CREDENTIAL_SCOPE, "credential_scope"),
    s(attr::CREDENTIAL_BINDING, "credential_binding"),
    i(attr::CREDENTIAL_EXPIRES_IN_S, "credential_expires_in_s"),
    s(attr::CREDENTIAL_FAILURE_REASON, "credential_failure_reason"),
    // Added with the agent kinds: files written before lack them (`schema::conform`).
    s(attr::SESSION_ID, "session_id"),
    s(attr::TOOL_NAME, "gen_ai_tool_name"),
    s(attr::TOOL_CALL_ID, "gen_ai_tool_call_id"),
    s(attr::TOOL_CATEGORY, "agent_tool_category"),
    s(attr::TOOL_DECISION, "agent_tool_decision"),
    s(attr::PERMISSION_MODE, "agent_permission_mode"),
    s(attr::URL_FULL, "url_full"),
    s(attr::MCP_SERVER, "mcp_server_name"),
    s(attr::TRACE_ID, "trace_id"),
    s(attr::SPAN_ID, "span_id"),
];

/// The typed column index of a contract attribute, if it has one.
pub fn attr_field_index(name: &str) -> Option<usize> {
    ATTR_FIELDS.iter().position(|field| field.attr == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_attribute_names_with_underscores() {
        for field in ATTR_FIELDS {
            assert_eq!(field.column, field.attr.replace('.', "_"), "{}", field.attr);
        }
    }
}
