//! Where the demo's responses go: a `cordon sink` given on the command line, or one
//! the demo runs itself, unless `[responder.targets]` are configured.

use std::time::Duration;

use crate::Config;

/// Points every response action at a sink, unless targets are configured: the given
/// `cordon sink`, or one the demo runs itself for as long as the process lives.
pub async fn demo_targets(
    config: &mut Config,
    sink: Option<String>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if !config.responder.targets.is_empty() {
        return Ok(None);
    }
    let (base, secret, own) = match sink {
        Some(url) => (
            url.trim_end_matches('/').to_string(),
            cordon_responder::secret::SecretSource {
                secret_env: Some("CORDON_SINK_SECRET".into()),
                secret_file: None,
            },
            None,
        ),
        None => {
            // A secret for this run, in a file only this user can read.
            let path = config.storage.data_dir.join("demo-webhook-secret");
            std::fs::create_dir_all(&config.storage.data_dir)?;
            std::fs::write(&path, uuid::Uuid::new_v4().simple().to_string())?;
            #[cfg(unix)]
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            let source = cordon_responder::secret::SecretSource {
                secret_env: None,
                secret_file: Some(path),
            };
            let secret = source.resolve().map_err(|message| anyhow::anyhow!(message))?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}", listener.local_addr()?);
            let sink = cordon_responder::sink::Sink::new(secret, 300, Box::new(crate::cli::sink::print_delivery));
            let task = tokio::spawn(async move {
                let _ = axum::serve(listener, sink.router()).await;
            });
            (url, source, Some(task))
        }
    };
    for action in cordon_responder::actions::names() {
        config.responder.targets.insert(
            action.to_string(),
            cordon_responder::config::TargetConfig {
                url: format!("{base}/{action}"),
                secret_env: secret.secret_env.clone(),
                secret_file: secret.secret_file.clone(),
                timeout: Duration::from_secs(5),
                headers: Default::default(),
                dry_run: false,
                max_in_flight: None,
                // The demo's receiver (its own, or `cordon sink` from scripts/demo.sh)
                // runs on this machine.
                allow_http: true,
            },
        );
    }
    println!("  responses go to the webhook sink at {base}");
    Ok(own)
}
