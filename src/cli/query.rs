//! `cordon query`: read-only SQL over the stored files (the server need not run).

use clap::Args;

use super::ServerArgs;
use crate::query::OutputFormat;

#[derive(Args)]
pub struct QueryArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
    /// Memory a query may use, in MiB.
    #[arg(long, default_value_t = 1024)]
    memory_mib: usize,
    sql: String,
}

pub async fn run(args: QueryArgs) -> anyhow::Result<()> {
    let config = args.server.load()?;
    let batches = crate::query::query(&config.storage, &args.sql, args.memory_mib << 20).await?;
    println!("{}", crate::query::render(&batches, args.format)?);
    Ok(())
}
