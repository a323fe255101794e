//! The OTLP/HTTP JSON side of `bench ingest`: the same requests as JSON bodies (what
//! most agents' exporters send: HTTP/1.1, `application/json`), sent over keep-alive
//! connections, and the bare JSON decode of them as its baseline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;

/// `payloads` (OTLP protobuf requests) as OTLP JSON bodies.
pub fn json_payloads(payloads: &[Bytes]) -> Vec<Bytes> {
    payloads
        .iter()
        .map(|payload| {
            let request = ExportLogsServiceRequest::decode(payload.clone()).expect("payloads decode");
            Bytes::from(serde_json::to_vec(&request).expect("requests serialize"))
        })
        .collect()
}

/// Decodes every JSON body (the JSON counterpart of the protobuf decode baseline).
pub fn decode_all(bodies: &[Bytes]) -> usize {
    bodies
        .iter()
        .map(|body| {
            let request: ExportLogsServiceRequest = serde_json::from_slice(body).expect("bodies decode");
            cordon_schemas::otlp::count_records(&request)
        })
        .sum()
}

/// Converts every JSON body into rows as ingest does (`otlp_json`, strings borrowed),
/// one core; each must be read without falling back to the reference decoder.
pub fn convert_all(bodies: &[Bytes]) -> usize {
    bodies
        .iter()
        .map(|body| {
            let mut builder = cordon_schemas::EventBatchBuilder::with_capacity(1_000);
            let (_, records) =
                cordon_schemas::otlp_json::convert_borrowed(body, 0, &mut builder).expect("bodies are read borrowing");
            std::hint::black_box(builder.finish());
            records
        })
        .sum()
}

/// Posts every body to `http://{addr}/v1/logs` from `concurrency` clients sharing a
/// pool of HTTP/1.1 keep-alive connections; an overloaded answer (429, 503) is retried.
pub async fn send_all(addr: std::net::SocketAddr, bodies: Arc<Vec<Bytes>>, concurrency: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let url = format!("http://{addr}{}", cordon_ingest::otlp::http::LOGS_PATH);
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, url, bodies, next) = (client.clone(), url.clone(), bodies.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(index) else {
                    return anyhow::Ok(());
                };
                loop {
                    let response = client
                        .post(&url)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body.clone())
                        .send()
                        .await?;
                    let status = response.status();
                    // Read to the end, so the connection goes back to the pool.
                    response.bytes().await?;
                    match status.as_u16() {
                        200 => break,
                        429 | 503 => tokio::time::sleep(Duration::from_millis(20)).await,
                        other => anyhow::bail!("export failed: HTTP {other}"),
                    }
                }
            }
        }));
    }
    for client in clients {
        client.await??;
    }
    Ok(())
}
