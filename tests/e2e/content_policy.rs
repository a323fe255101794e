//! Raw content never reaches storage, by allow-list: the probe's bypasses of the old
//! deny-list (a trailing space, camelCase, snake_case, `message`, a kvlist holding
//! `content`, `gen_ai.prompt`, `gen_ai.completion`, OPA input deeper than three levels)
//! sent over OTLP and OPA's upload are stored as keyed hashes or not at all: the
//! secret's bytes are nowhere in the data directory (WAL and Parquet).

use std::time::Duration;

use cordon_schemas::FlatEvent;
use cordon_schemas::otlp::{events_to_request, key_value};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, KeyValueList, any_value::Value as Any};
use prost::Message;
use serde_json::json;

use crate::common::*;

const SECRET: &str = "TOP-SECRET-Q3-FORECAST-4711";

fn text(value: &str) -> AnyValue {
    AnyValue {
        value: Some(Any::StringValue(value.into())),
    }
}

fn attribute(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(value),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probes_content_bypasses_are_stored_as_hashes_or_not_at_all() {
    let test = TestServer::start_with(|config| {
        config.content.unlisted = cordon_schemas::content::Unlisted::Hash;
        // Flushed at once, so Parquet is checked as well as the log.
        config.storage.flush_interval = Duration::from_millis(200);
    })
    .await;
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let mut event = FlatEvent::new(now, "clipboard.write", "wks-0142");
    event.set("event.id", "content-1").set("user.name", "alice");
    let mut request = events_to_request(&[event]);
    let record = &mut request.resource_logs[0].scope_logs[0].log_records[0];
    for name in [
        "clipboard.content ",
        "clipboardContent",
        "clipboard_content",
        "message",
        "gen_ai.prompt",
        "gen_ai.completion",
    ] {
        record.attributes.push(attribute(name, text(SECRET)));
    }
    let kvlist = AnyValue {
        value: Some(Any::KvlistValue(KeyValueList {
            values: vec![attribute("content", text(SECRET))],
        })),
    };
    record.attributes.push(attribute("tool.input", kvlist));
    // Listed metadata is kept as sent.
    record.attributes.push(key_value(
        "session.id",
        &cordon_schemas::AttrValue::Str("sess-9".into()),
    ));
    let response = grpc_raw(&test.grpc_url(), request.encode_to_vec().into())
        .await
        .unwrap();
    assert!(
        response.partial_success.is_some(),
        "the producer is told what was not stored"
    );

    let upload = json!([{
        "labels": {"host.id": "wks-0142"},
        "decision_id": "content-opa-1",
        "path": "agent/broker/allow",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "input": {"user": "alice", "action": "clipboard.write",
                  "request": {"headers": {"x-body": {"content": SECRET}}},
                  "prompt": SECRET},
        "result": {"allow": false, "reason": "clipboard of restricted data"}
    }]);
    let status = reqwest::Client::new()
        .post(format!("http://{}/v1/opa/logs", test.server.http_addr))
        .json(&upload)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    let rows = stored_rows(&test.storage()).await;
    let clipboard = rows.iter().find(|row| row["event_id"] == "content-1").unwrap();
    let attributes = clipboard["attributes"].to_string();
    assert!(attributes.contains("hmac-sha256:"), "{attributes}");
    // session.id is the contract's session key: a column of its own.
    assert_eq!(clipboard["session_id"], "sess-9", "listed metadata is kept");
    let decision = rows.iter().find(|row| row["event_id"] == "content-opa-1").unwrap();
    assert_eq!(decision["policy_input_action"], "clipboard.write");
    assert!(
        decision["attributes"].to_string().contains("hmac-sha256:"),
        "{decision:?}"
    );
    // Counted once per record (the clipboard event and the OPA decision).
    let hashed = test.server.metrics.notice_count("content_attribute_hashed");
    assert_eq!(hashed, 2, "{hashed} records with hashed attributes");

    eventually(Duration::from_secs(10), "a flush to Parquet", async || {
        (test.server.metrics.parquet_files_written.get() > 0).then_some(())
    })
    .await;
    let stored = all_bytes(&test.storage().data_dir);
    let found = stored.windows(SECRET.len()).any(|window| window == SECRET.as_bytes());
    assert!(!found, "the secret reached the data directory");
    test.server.stop().await.unwrap();
}
