//! Tests of `batch.rs`: rows, time bounds and skew, kinds, provenance and findings,
//! the content policy.

use super::*;
use crate::value::AttrValue;
use arrow::array::{Array, AsArray, MapArray};
use arrow::datatypes::{Int64Type, TimestampNanosecondType};

fn flow() -> EventRecord<'static> {
    let mut record = EventRecord::new();
    record.time_unix_nano = 1_700_000_000_000_000_000;
    record.set("host.id".into(), AttrValue::Str("wks-1".into()));
    record.set("event.name".into(), AttrValue::Str("network.flow".into()));
    record.set("event.id".into(), AttrValue::Str("e-1".into()));
    record.set("destination.port".into(), AttrValue::Str("443".into()));
    record.set("destination.address".into(), AttrValue::Str("paste.example.net".into()));
    record.set("host.arch".into(), AttrValue::Str("arm64".into()));
    record
}

#[test]
fn a_record_becomes_one_typed_row() {
    let mut builder = EventBatchBuilder::with_capacity(4);
    assert!(builder.append(&flow(), 5).unwrap().is_empty());
    let batch = builder.finish();
    assert_eq!(batch.num_rows(), 1);
    let port = batch
        .column_by_name("destination_port")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(port.value(0), 443);
    let address = batch.column_by_name("destination_address").unwrap().as_string::<i32>();
    assert_eq!(address.value(0), "paste.example.net");
    let attributes = batch.column_by_name("attributes").unwrap();
    let map = attributes.as_any().downcast_ref::<MapArray>().unwrap();
    assert_eq!(map.value(0).len(), 1);
    assert_eq!(
        batch
            .column_by_name("signature_status")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "missing"
    );
}

#[test]
fn each_row_keeps_its_own_typed_values_and_nulls_where_it_set_none() {
    let mut builder = EventBatchBuilder::with_capacity(4);
    let mut record = flow();
    builder.append(&record, 5).unwrap();
    // Reused as the converters reuse it: nothing of the last event may leak in.
    record.reset();
    record.time_unix_nano = 1_700_000_000_000_000_000;
    record.set("host.id".into(), AttrValue::Str("wks-2".into()));
    record.set("event.name".into(), AttrValue::Str("file.access".into()));
    record.set("file.path".into(), AttrValue::Str("/etc/passwd".into()));
    record.set("user.name".into(), AttrValue::Str("dave".into()));
    record.remove("user.name");
    builder.append(&record, 5).unwrap();
    record.reset();
    record.time_unix_nano = 1_700_000_000_000_000_000;
    record.set("host.id".into(), AttrValue::Str("wks-3".into()));
    record.set("event.name".into(), AttrValue::Str("network.flow".into()));
    record.set("destination.port".into(), AttrValue::Int(22));
    builder.append(&record, 5).unwrap();
    record.reset();
    record.set("host.id".into(), AttrValue::Str("wks-4".into()));
    record.set("event.name".into(), AttrValue::Str("process.start".into()));
    builder.append(&record, 5).unwrap();
    let batch = builder.finish();
    let text = |column: &str| -> Vec<Option<String>> {
        let values = batch.column_by_name(column).unwrap().as_string::<i32>();
        values.iter().map(|value| value.map(str::to_string)).collect()
    };
    let port = batch
        .column_by_name("destination_port")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(port.iter().collect::<Vec<_>>(), [Some(443), None, Some(22), None]);
    assert_eq!(
        text("destination_address"),
        [Some("paste.example.net".to_string()), None, None, None]
    );
    assert_eq!(text("file_path"), [None, Some("/etc/passwd".to_string()), None, None]);
    assert_eq!(text("user_name"), [None, None, None, None], "removed, not stored");
    // The builder starts empty again after finish.
    builder.append(&flow(), 5).unwrap();
    let again = builder.finish();
    let port = again
        .column_by_name("destination_port")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(port.iter().collect::<Vec<_>>(), [Some(443)]);
}

#[test]
fn missing_time_uses_receive_time_and_is_flagged() {
    let mut record = flow();
    record.time_unix_nano = 0;
    let mut builder = EventBatchBuilder::with_capacity(1);
    let notices = builder.append(&record, 42).unwrap();
    assert_eq!(notices, vec![Notice::TimeEstimated]);
    let batch = builder.finish();
    let time = batch.column(0).as_primitive::<TimestampNanosecondType>();
    assert_eq!(time.value(0), 42);
    assert!(batch.column(3).as_boolean().value(0));
}

fn attribute(batch: &RecordBatch, row: usize, key: &str) -> Option<String> {
    let map = batch.column_by_name("attributes").unwrap().as_map();
    let entries = map.value(row);
    let keys = entries.column(0).as_string::<i32>();
    let values = entries.column(1).as_string::<i32>();
    (0..entries.len())
        .find(|&index| keys.value(index) == key)
        .map(|index| values.value(index).to_string())
}

#[test]
fn a_time_ahead_of_arrival_beyond_the_skew_is_flagged_and_a_forged_flag_dropped() {
    let second = 1_000_000_000;
    let arrival = 1_700_000_000_000_000_000;
    let mut builder = EventBatchBuilder::with_capacity(3).with_max_clock_skew(std::time::Duration::from_secs(60));
    let mut ahead = flow();
    ahead.time_unix_nano = (arrival + 600 * second) as u64;
    assert_eq!(builder.append(&ahead, arrival).unwrap(), vec![Notice::ClockAhead(600)]);
    let mut within = flow();
    within.time_unix_nano = (arrival + 59 * second) as u64;
    within.set(CLOCK_AHEAD_ATTRIBUTE.into(), AttrValue::Str("9999".into()));
    assert!(builder.append(&within, arrival).unwrap().is_empty());
    let batch = builder.finish();
    assert_eq!(attribute(&batch, 0, CLOCK_AHEAD_ATTRIBUTE).as_deref(), Some("600"));
    assert_eq!(
        attribute(&batch, 1, CLOCK_AHEAD_ATTRIBUTE),
        None,
        "a producer cannot set Cordon's flag"
    );
    assert_eq!(attribute(&batch, 1, "host.arch").as_deref(), Some("arm64"));
}

#[test]
fn times_outside_the_bounds_or_the_timestamp_range_are_rejected_and_add_no_row() {
    let second = 1_000_000_000i64;
    let arrival = 1_700_000_000 * second;
    let mut builder = EventBatchBuilder::with_capacity(4).with_time_bounds(crate::TimeBounds::default());
    let mut poison = flow();
    poison.time_unix_nano = 1 << 63;
    assert_eq!(
        builder.append(&poison, arrival).unwrap_err().label(),
        "time_out_of_range"
    );
    poison.time_unix_nano = i64::MAX as u64;
    assert_eq!(
        builder.append(&poison, arrival).unwrap_err().label(),
        "time_too_far_ahead"
    );
    poison.time_unix_nano = 0;
    poison.observed_time_unix_nano = u64::MAX;
    assert_eq!(
        builder.append(&poison, arrival).unwrap_err().label(),
        "time_out_of_range"
    );
    let mut old = flow();
    old.time_unix_nano = (arrival - 8 * 24 * 3600 * second) as u64;
    let error = builder.append(&old, arrival).unwrap_err();
    assert_eq!(error.label(), "time_too_old");
    assert!(error.to_string().contains("limits.max_event_age"), "{error}");
    let mut good = flow();
    good.time_unix_nano = arrival as u64;
    builder.append(&good, arrival).unwrap();
    assert_eq!(builder.finish().num_rows(), 1);
    // Without bounds (replays, fixtures) any time in range is taken.
    let mut unbounded = EventBatchBuilder::with_capacity(1);
    unbounded.append(&old, arrival).unwrap();
    assert_eq!(
        unbounded.append(&poison, arrival).unwrap_err().label(),
        "time_out_of_range"
    );
}

#[test]
fn unknown_kinds_are_other_and_keep_their_name() {
    let mut record = flow();
    record.set("event.name".into(), AttrValue::Str("agent.dream".into()));
    let mut builder = EventBatchBuilder::with_capacity(1);
    let notices = builder.append(&record, 1).unwrap();
    assert_eq!(notices, vec![Notice::UnknownEventName("agent.dream".into())]);
    let batch = builder.finish();
    assert_eq!(
        batch.column_by_name("event_name").unwrap().as_string::<i32>().value(0),
        "other"
    );
}

#[test]
fn rejected_records_add_no_row() {
    let mut record = flow();
    record.host_id = None;
    let mut builder = EventBatchBuilder::with_capacity(1);
    assert_eq!(builder.append(&record, 1), Err(RejectReason::MissingHostId));
    assert!(builder.is_empty());
    assert_eq!(builder.finish().num_rows(), 0);
}

#[test]
fn only_cordon_writes_its_own_kinds() {
    let mut record = flow();
    record.set("event.name".into(), AttrValue::Str("cordon.response".into()));
    let mut producer = EventBatchBuilder::with_capacity(1);
    assert_eq!(
        producer.append(&record, 1),
        Err(RejectReason::ReservedKind("cordon.response"))
    );
    assert!(producer.is_empty());
    let mut own = EventBatchBuilder::with_capacity(1).allowing_own_kinds();
    assert!(own.append(&record, 1).unwrap().is_empty());
    assert_eq!(
        own.finish()
            .column_by_name("event_name")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "cordon.response"
    );
}
#[test]
fn provenance_is_stored_and_hosts_outside_the_scope_become_one_finding_each() {
    let provenance = Provenance {
        transport: "otlp_http",
        producer: Some("wks-1-agent".into()),
        tls: true,
        hosts: crate::HostScope::Only(std::sync::Arc::new(crate::HostPatterns::new(&["wks-1"]))),
    };
    let mut builder = EventBatchBuilder::with_capacity(4).with_provenance(provenance);
    builder.append(&flow(), 5).unwrap();
    let mut spoofed = flow();
    spoofed.set("host.id".into(), AttrValue::Str("ceo-laptop".into()));
    let error = builder.append(&spoofed, 5).unwrap_err();
    assert_eq!(error.label(), "host_not_permitted");
    assert!(error.to_string().contains("wks-1-agent"), "{error}");
    builder.append(&spoofed, 5).unwrap_err();
    assert_eq!(builder.len(), 1, "a refused record adds no row");
    assert_eq!(builder.append_spoofing_findings(7), 1);
    assert_eq!(builder.append_spoofing_findings(8), 0, "each refusal is reported once");
    let batch = builder.finish();
    let strings = |name: &str| batch.column_by_name(name).unwrap().as_string::<i32>().clone();
    assert_eq!(strings("host_id").value(1), "ceo-laptop");
    assert_eq!(strings("event_name").value(1), "cordon.spoofing");
    assert_eq!(
        attribute(&batch, 1, crate::spoofing::RECORDS_ATTRIBUTE).as_deref(),
        Some("2")
    );
    for row in 0..2 {
        assert_eq!(strings("transport").value(row), "otlp_http");
        assert_eq!(strings("producer").value(row), "wks-1-agent");
        assert!(batch.column_by_name("tls").unwrap().as_boolean().value(row));
    }
    // A producer cannot write the finding itself.
    let mut forged = flow();
    forged.set("event.name".into(), AttrValue::Str("cordon.spoofing".into()));
    assert_eq!(
        EventBatchBuilder::with_capacity(1)
            .append(&forged, 1)
            .unwrap_err()
            .label(),
        "reserved_kind"
    );
}
#[test]
fn unlisted_attributes_are_hashed_or_dropped_and_cordons_own_are_not() {
    let policy = crate::content::ContentPolicy::new::<&str>(&[], crate::content::Unlisted::Hash, Some(b"k".to_vec()));
    let mut builder = EventBatchBuilder::with_capacity(2).with_content_policy(std::sync::Arc::new(policy));
    let mut record = flow();
    record.set(
        "gen_ai.prompt".into(),
        AttrValue::Str("summarise q3.xlsx for me".into()),
    );
    record.set("clipboard_content".into(), AttrValue::Str("IBAN DE89...".into()));
    let notices = builder.append(&record, 5).unwrap();
    assert_eq!(
        notices,
        vec![Notice::ContentHashed("gen_ai.prompt and 1 more".into())],
        "one notice per record"
    );
    let batch = builder.finish();
    let stored = attribute(&batch, 0, "gen_ai.prompt").unwrap();
    assert!(
        stored.starts_with("hmac-sha256:") && stored.ends_with(";bytes=24"),
        "{stored}"
    );
    assert!(
        attribute(&batch, 0, "clipboard_content")
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert_eq!(
        attribute(&batch, 0, "host.arch").as_deref(),
        Some("arm64"),
        "listed: as sent"
    );

    // The default policy (no key) drops; the response feed's own attributes pass.
    let mut dropping = EventBatchBuilder::with_capacity(1);
    let notices = dropping.append(&record, 5).unwrap();
    assert!(notices.contains(&Notice::ContentDropped("gen_ai.prompt and 1 more".into())));
    assert_eq!(attribute(&dropping.finish(), 0, "gen_ai.prompt"), None);
    let mut own = EventBatchBuilder::with_capacity(1).allowing_own_kinds();
    let mut response = flow();
    response.set("response.outcome".into(), AttrValue::Str("delivered".into()));
    own.append(&response, 5).unwrap();
    assert_eq!(
        attribute(&own.finish(), 0, "response.outcome").as_deref(),
        Some("delivered")
    );
}
