//! `release_host`: the EDR lifts an isolation.

use super::ResponseAction;
use crate::model::Target;

pub struct ReleaseHost;

impl ResponseAction for ReleaseHost {
    fn name(&self) -> &'static str {
        "release_host"
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
