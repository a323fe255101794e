//! `POST /v1/opa/logs`: OPA's decision-log upload (contract section 1). Point OPA's
//! `decision_logs` service at it; each entry becomes a `policy.decision` event
//! (`cordon_schemas::opa`).

use crate::ingestor::Transport;
use crate::json_upload::JsonUpload;

pub const OPA_LOGS_PATH: &str = "/v1/opa/logs";

pub const OPA_LOGS: JsonUpload = JsonUpload {
    path: OPA_LOGS_PATH,
    transport: Transport::OpaLogs,
    what: "an OPA decision-log upload",
    map: cordon_schemas::opa::decision_to_flat,
};
