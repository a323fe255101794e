//! Drives a simulation: paces it against the wall clock or runs it flat out, and sends
//! each batch.

use std::time::{Duration, Instant};

use super::senders::{SendReport, Sender};
use super::{SimConfig, Simulator};

/// How simulated time relates to the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pace {
    /// Events are sent when their event time comes.
    Realtime,
    /// Events are sent as fast as the receiver takes them.
    Fast,
}

/// Runs the simulation to the end; `on_progress` is told after every batch.
pub async fn run(
    config: SimConfig,
    sender: &mut Sender,
    batch: usize,
    pace: Pace,
    mut on_progress: impl FnMut(&SendReport),
) -> anyhow::Result<SendReport> {
    let mut simulator = Simulator::new(config.clone());
    let mut report = SendReport::default();
    let wall_start = Instant::now();
    let batch = batch.max(1);
    while !simulator.is_done() {
        let until = match pace {
            Pace::Fast => i64::MAX,
            Pace::Realtime => config.start_unix_nano + wall_start.elapsed().as_nanos() as i64,
        };
        let events = simulator.next_events(until, batch);
        if events.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        sender.send(&events, &mut report).await?;
        on_progress(&report);
    }
    Ok(report)
}
