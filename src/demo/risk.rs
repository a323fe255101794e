//! The demo's view of entity risk and signals: the riskiest entities (what the
//! console's Entities page ranks) and the signals the building-block rules wrote.

use cordon_detections::alerts::Alert;

use crate::query::OutputFormat;
use crate::server::Server;

pub async fn print_entities_and_signals(server: &Server, alerts: &[Alert]) -> anyhow::Result<()> {
    let period = server.detections.shared.risk_period();
    let ranked = cordon_detections::risk::ranking(alerts, cordon_schemas::time::now_nanos(), period);
    println!("riskiest entities (console: Entities; GET /api/v1/entities):");
    for entity in ranked.iter().take(5) {
        let incidents = if entity.incidents.is_empty() {
            String::new()
        } else {
            format!(", risk incident {}", entity.incidents.join(", "))
        };
        println!(
            "  {:<8} {:<36} risk {:>5.1} from {} alert(s){incidents}",
            entity.kind,
            entity.id,
            entity.risk,
            entity.alerts.len()
        );
    }
    let signals = crate::query::live(
        server.ingestor.store(),
        "SELECT attributes['signal.rule'] AS building_block, count(*) AS signals, count(DISTINCT host_id) AS hosts \
         FROM cordon_signal GROUP BY 1 ORDER BY 1",
        256 << 20,
    )
    .await?;
    println!(
        "signals of building-block rules (alert = false; cordon.signal events, not alerts):\n{}",
        crate::query::render(&signals, OutputFormat::Table)?
    );
    Ok(())
}
