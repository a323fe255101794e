//! `revoke_token`: the IdP revokes the agent's token (by id when the rule found one,
//! else the user's tokens on that host).

use cordon_schemas::ActionKind;

use super::ResponseAction;
use crate::model::Target;

pub struct RevokeToken;

impl ResponseAction for RevokeToken {
    fn kind(&self) -> ActionKind {
        ActionKind::RevokeToken
    }

    fn summary(&self) -> &'static str {
        "revoke the agent's token at the identity provider"
    }

    fn wants_token_id(&self) -> bool {
        true
    }

    fn revokes(&self) -> bool {
        true
    }

    fn check_target(&self, target: &Target) -> Result<(), String> {
        if target.token_id.is_none() && target.user_name.is_none() {
            return Err("revoke_token needs a token_id or a user_name".into());
        }
        Ok(())
    }
}
