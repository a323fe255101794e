//! `notify`: a message to a chat channel or pager; it needs no particular target.

use cordon_schemas::ActionKind;

use super::ResponseAction;
use crate::model::Target;

pub struct Notify;

impl ResponseAction for Notify {
    fn kind(&self) -> ActionKind {
        ActionKind::Notify
    }

    fn summary(&self) -> &'static str {
        "post the alert to a chat channel or pager"
    }

    fn check_target(&self, _target: &Target) -> Result<(), String> {
        Ok(())
    }
}
