//! `POST /v1/falco`: Falco's alerts, as its `http_output` or falcosidekick's webhook
//! output posts them (contract section 1). Each becomes a flat event of service
//! `falco` (`cordon_schemas::falco`), which the Falco mapping turns into the process
//! starts, network flows and file accesses the contract names.

use crate::ingestor::Transport;
use crate::json_upload::JsonUpload;

pub const FALCO_PATH: &str = "/v1/falco";

pub const FALCO: JsonUpload = JsonUpload {
    path: FALCO_PATH,
    transport: Transport::Falco,
    what: "a Falco alert",
    map: cordon_schemas::falco::alert_to_flat,
};
