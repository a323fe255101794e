//! `cordon serve`: the server until Ctrl-C.

use super::ServerArgs;
use crate::Server;

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let config = args.load()?;
    let server = Server::start(config).await?;
    eprintln!(
        "cordon: OTLP/gRPC on {}, OTLP/HTTP on {}; Ctrl-C stops",
        server.grpc_addr, server.http_addr
    );
    crate::server::shutdown_signal().await;
    eprintln!("cordon: stopping; writing buffered events to Parquet");
    server.stop().await
}
