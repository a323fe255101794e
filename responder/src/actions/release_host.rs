//! `release_host`: the EDR lifts an isolation.

use cordon_schemas::ActionKind;

use super::ResponseAction;
use crate::model::Target;

pub struct ReleaseHost;

impl ResponseAction for ReleaseHost {
    fn kind(&self) -> ActionKind {
        ActionKind::ReleaseHost
    }

    fn summary(&self) -> &'static str {
        "release an isolated host at the EDR"
    }

    fn check_target(&self, target: &Target) -> Result<(), String> {
        match target.host_id {
            Some(_) => Ok(()),
            None => Err("release_host needs a host_id".into()),
        }
    }
}
