//! The ingest trust boundary at start: the producers' credentials, and the rule that
//! without any Cordon takes unauthenticated events only on loopback unless told to.

use std::sync::Arc;

use anyhow::bail;
use cordon_ingest::IngestMetrics;
use cordon_ingest::auth::Authenticator;

use crate::config::Config;

/// The authenticator for the configured producers; refuses a start that would take
/// unauthenticated events from the network without `allow_unauthenticated_ingest`.
pub fn producer_authenticator(config: &Config, metrics: &IngestMetrics) -> anyhow::Result<Arc<Authenticator>> {
    let auth = Authenticator::new(&config.producers)?;
    let explicit = config.producers.allow_unauthenticated_ingest;
    if !auth.has_credentials() && !explicit {
        for (setting, addr) in [
            ("otlp.grpc_listen", config.otlp.grpc_listen),
            ("otlp.http_listen", config.otlp.http_listen),
        ] {
            if !addr.ip().is_loopback() {
                bail!(
                    "{setting} = {addr} reaches the network, and no producer has a credential: add [[producers.credentials]] \
                     (a token or client certificate and the hosts it may send for; README, \"Connect your producers\"), \
                     or set producers.allow_unauthenticated_ingest = true to take events from anyone who can reach the port"
                );
            }
        }
    }
    metrics
        .unauthenticated_allowed
        .set(i64::from(auth.allows_unauthenticated()));
    if auth.allows_unauthenticated() {
        let why = if explicit {
            "producers.allow_unauthenticated_ingest = true"
        } else {
            "no [[producers.credentials]]; loopback only"
        };
        tracing::warn!(
            why,
            "events from producers without a credential are taken and stored with no producer"
        );
    } else {
        tracing::info!("every producer must present a credential (bearer token or client certificate)");
    }
    Ok(Arc::new(auth))
}
