//! `cordon sink`: a webhook receiver for demos and tests that checks each delivery's
//! signature and prints what arrived.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::humantime_duration;

#[derive(Args)]
pub struct SinkArgs {
    #[arg(long, default_value = "127.0.0.1:9400")]
    listen: std::net::SocketAddr,
    /// The environment variable holding the shared secret...
    #[arg(long, default_value = "CORDON_SINK_SECRET")]
    secret_env: String,
    /// ...or a file holding it.
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// How far a delivery's timestamp may be from now.
    #[arg(long, default_value = "5m", value_parser = humantime_duration)]
    tolerance: Duration,
}

/// Prints one delivery the sink received.
pub fn print_delivery(received: &cordon_responder::sink::Received) {
    let what = format!(
        "{} host={} user={} action_id={}",
        received.action.as_deref().unwrap_or("?"),
        received.host_id.as_deref().unwrap_or("-"),
        received.user_name.as_deref().unwrap_or("-"),
        received.action_id.as_deref().unwrap_or("-"),
    );
    if received.signature != "valid" {
        println!("cordon sink: REFUSED {what}: {}", received.signature);
    } else if received.duplicate {
        println!("cordon sink: repeat of {what} (already received; not acted on again)");
    } else {
        println!("cordon sink: received {what} (signature valid)");
    }
}

pub async fn run(args: SinkArgs) -> anyhow::Result<()> {
    let source = match args.secret_file {
        Some(path) => cordon_responder::secret::SecretSource {
            secret_env: None,
            secret_file: Some(path),
        },
        None => cordon_responder::secret::SecretSource {
            secret_env: Some(args.secret_env),
            secret_file: None,
        },
    };
    let secret = source
        .resolve()
        .map_err(|message| anyhow::anyhow!("cordon sink: {message}"))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!(
        "cordon sink: receiving webhooks on http://{}; Ctrl-C stops",
        listener.local_addr()?
    );
    let sink = cordon_responder::sink::Sink::new(secret, args.tolerance.as_secs() as i64, Box::new(print_delivery));
    axum::serve(listener, sink.router())
        .with_graceful_shutdown(crate::server::shutdown_signal())
        .await?;
    Ok(())
}
