//! `isolate_host`: the EDR cuts the host off the network. The most disruptive action,
//! so the isolation guardrails apply to it.

use cordon_schemas::ActionKind;

use super::ResponseAction;
use crate::model::Target;

pub struct IsolateHost;

impl ResponseAction for IsolateHost {
    fn kind(&self) -> ActionKind {
        ActionKind::IsolateHost
    }

    fn summary(&self) -> &'static str {
        "isolate the host from the network at the EDR"
    }

    fn check_target(&self, target: &Target) -> Result<(), String> {
        match target.host_id {
            Some(_) => Ok(()),
            None => Err("isolate_host needs a host_id".into()),
        }
    }

    fn isolates(&self) -> bool {
        true
    }
}
