use super::*;
use crate::flat::FlatEvent;
use crate::otlp::{events_to_request, key_value};
use crate::otlp_samples::sample;
use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::common::v1::KeyValue as ProtoKeyValue;

/// Rows, accepted count, rejections and notices: what a conversion produced.
type Converted = (
    RecordBatch,
    usize,
    Vec<crate::otlp::Rejection>,
    Vec<crate::reject::Notice>,
    usize,
);

fn builder() -> EventBatchBuilder {
    // The samples' own attribute names, kept as sent so both ways can be compared.
    let policy = std::sync::Arc::new(crate::content::ContentPolicy::new(
        &["tags", "labels", "blob", "custom.*"],
        crate::content::Unlisted::Drop,
        None,
    ));
    EventBatchBuilder::with_capacity(4).with_content_policy(policy)
}

fn finish(mut builder: EventBatchBuilder, report: ConversionReport, records: usize) -> Converted {
    // Event ids are assigned per builder when missing: compare everything else.
    let batch = builder.finish();
    let keep: Vec<usize> = (0..batch.num_columns())
        .filter(|i| batch.schema().field(*i).name() != "event_id")
        .collect();
    let batch = batch.project(&keep).unwrap();
    (batch, report.accepted, report.rejected, report.notices, records)
}

fn by_reference(bytes: &[u8]) -> Option<Converted> {
    let request: ExportLogsServiceRequest = serde_json::from_slice(bytes).ok()?;
    let mut builder = builder();
    let report = convert_request(&request, 7, &mut builder);
    Some(finish(builder, report, count_records(&request)))
}

fn borrowed(bytes: &[u8]) -> Option<Converted> {
    let mut builder = builder();
    let (report, records) = convert_borrowed(bytes, 7, &mut builder).ok()?;
    Some(finish(builder, report, records))
}

/// Read here, and the same rows as the reference.
fn assert_same_as_reference(bytes: &[u8]) -> Converted {
    let text = String::from_utf8_lossy(bytes);
    let reference = by_reference(bytes).unwrap_or_else(|| panic!("the reference refuses {text}"));
    let ours = borrowed(bytes).unwrap_or_else(|| panic!("declined: {text}"));
    assert_eq!(ours, reference, "{text}");
    ours
}

fn string(key: &str, value: &str) -> ProtoKeyValue {
    key_value(key, &AttrValue::Str(value.into()))
}

#[test]
fn rows_are_the_same_as_through_the_reference() {
    let bytes = serde_json::to_vec(&sample()).unwrap();
    let (batch, accepted, rejected, _, records) = assert_same_as_reference(&bytes);
    assert_eq!((accepted, rejected.len(), records), (2, 1, 3));
    let text = format!("{batch:?}");
    assert!(text.contains("ålice ✓ \\\"quoted\\\""), "{text}");
    assert!(!text.contains("raw content"));
    for complex in [r#"["a"]"#, r#"{"k":1}"#, r#""0001feff""#] {
        assert!(text.contains(&complex.replace('"', "\\\"")), "{complex} in {text}");
    }
}

#[test]
fn what_sdks_send_is_read_here() {
    // Numbers where the reference serialises strings, escapes, nulls, unknown fields,
    // a short string body naming the event, fields of an AnyValue given twice.
    let body = r#"{"resourceLogs":[{"resource":{"attributes":[
        {"key":"host.id","value":{"stringValue":"wks-\u0031"}},
        {"key":"service.name","value":{"stringValue":"claude-code"}}],"droppedAttributesCount":0},
      "scopeLogs":[{"scope":{"name":"com.anthropic.claude_code","version":"2.0.1"},
        "logRecords":[
          {"timeUnixNano":1700000000000000000,"observedTimeUnixNano":"1700000000000000001",
           "severityNumber":9,"body":{"stringValue":"claude_code.tool_result"},
           "attributes":[{"key":"custom.n","value":{"intValue":42}},
                         {"key":"custom.s","value":{"intValue":"-7"}},
                         {"key":"custom.d","value":{"doubleValue":3}},
                         {"key":"custom.twice","value":{"stringValue":"first","boolValue":true}},
                         {"key":"custom.nulls","value":{"stringValue":null,"intValue":5}},
                         {"key":"custom.none","value":null},
                         {"key":"custom.unknown","value":{"futureValue":[1,{"a":2}]}}],
           "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"","flags":1,"futureField":{"x":[]}},
          {"timeUnixNano":"1700000000000000002","eventName":"network.flow","attributes":[]}]}],
      "schemaUrl":"https://opentelemetry.io/schemas/1.30.0"}]}"#;
    let (batch, accepted, _, _, records) = assert_same_as_reference(body.as_bytes());
    assert_eq!((accepted, records), (2, 2));
    assert!(format!("{batch:?}").contains("wks-1"));
    // The empty request, and one given as a JSON array by position, as serde reads both.
    assert_same_as_reference(b"{}");
    assert_same_as_reference(
        br#"[[[null,[[null,[{"eventName":"file.access","attributes":[["host.id",{"stringValue":"h"}]]}]]]]]]"#,
    );
}

#[test]
fn forms_left_to_the_reference_are_still_stored() {
    // const_hex takes a 0x prefix; this reader leaves such ids to the reference.
    let body = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"eventName":"file.access",
        "traceId":"0x5b8efff798038103d269b633813fc60c",
        "attributes":[{"key":"host.id","value":{"stringValue":"wks-1"}}]}]}]}]}"#;
    assert!(borrowed(body).is_none());
    let reference = by_reference(body).expect("the reference reads it");
    let mut builder = builder();
    let (report, records) = convert_json_request(body, 7, &mut builder).unwrap();
    assert_eq!(finish(builder, report, records), reference);
    assert_eq!(reference.1, 1);
}

#[test]
fn what_the_reference_refuses_is_refused_with_its_message() {
    let refused: &[&str] = &[
        "{",
        r#"{"resourceLogs":{}}"#,
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":-1}]}]}]}"#,
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":1.5}]}]}]}"#,
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"xyz"}]}]}]}"#,
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"value":{"stringValue":"no key"}}]}]}]}]}"#,
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"k","value":{"intValue":"abc"}}]}]}]}]}"#,
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"k","value":{"intValue":9223372036854775808}}]}]}]}]}"#,
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"k","value":{"bytesValue":"*"}}]}]}]}]}"#,
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"k","value":{"arrayValue":{}}}]}]}]}]}"#,
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":"a string, not an AnyValue"}]}]}]}"#,
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"eventName":"a","eventName":"b"}]}]}]}"#,
    ];
    for body in refused {
        let bytes = body.as_bytes();
        assert!(by_reference(bytes).is_none(), "the reference reads {body}");
        assert!(borrowed(bytes).is_none(), "read here: {body}");
        let reference_error = serde_json::from_slice::<ExportLogsServiceRequest>(bytes).unwrap_err();
        let error = convert_json_request(bytes, 7, &mut builder()).unwrap_err();
        assert_eq!(error.to_string(), reference_error.to_string());
    }
}

#[test]
fn mutated_bodies_read_here_read_the_same_in_the_reference() {
    let bytes = serde_json::to_vec(&sample()).unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut read_here = 0;
    for _ in 0..3_000 {
        let mut mutated = bytes.clone();
        for _ in 0..2 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let position = (state as usize) % mutated.len();
            // Bytes JSON is made of, so that many mutants still parse.
            mutated[position] = b"\"{}[],:0123456789abcdefxyzAV-. \\"[(state >> 40) as usize % 32];
        }
        if let Some(ours) = borrowed(&mutated) {
            read_here += 1;
            let reference = by_reference(&mutated);
            assert_eq!(Some(ours), reference, "{}", String::from_utf8_lossy(&mutated));
        }
    }
    assert!(
        read_here > 100,
        "only {read_here} mutants parsed: the test would check little"
    );
}

#[test]
fn deeply_nested_values_are_refused_not_a_stack_overflow() {
    let nested = |depth: usize| {
        let value = format!(
            "{}{{\"stringValue\":\"x\"}}{}",
            r#"{"arrayValue":{"values":["#.repeat(depth),
            "]}}".repeat(depth)
        );
        format!(
            r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"attributes":[{{"key":"custom.n","value":{value}}}]}}]}}]}}]}}"#
        )
    };
    assert_same_as_reference(nested(10).as_bytes());
    // serde_json stops at 128 levels; without that, 100,000 would overflow the stack.
    assert!(convert_json_request(nested(100_000).as_bytes(), 7, &mut builder()).is_err());
}

#[test]
fn a_resource_is_expanded_only_up_to_the_request_bounds() {
    let events: Vec<FlatEvent> = (0..3_000)
        .map(|n| FlatEvent::new(1_000 + n, "network.flow", "wks-1"))
        .collect();
    let mut request = events_to_request(&events);
    let resource = request.resource_logs[0].resource.as_mut().unwrap();
    // One value as long as a value may be, over every record.
    let big = "x".repeat(crate::limits::MAX_VALUE_BYTES);
    resource.attributes.push(string("custom.blob", &big));
    let (_, accepted, rejected, _, _) = assert_same_as_reference(&serde_json::to_vec(&request).unwrap());
    assert!(accepted < 3_000 && accepted > 0, "{accepted}");
    assert!(
        rejected
            .iter()
            .all(|rejection| rejection.reason.label() == "request_too_large")
    );
}

#[test]
fn bodies_real_exporters_sent_are_read_here() {
    // The fuzz seeds: what OpenTelemetry SDKs' http/json exporters sent (fuzz/make_seeds.py).
    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/otlp_json");
    let mut read = 0;
    for seed in std::fs::read_dir(&seeds).unwrap() {
        let bytes = std::fs::read(seed.unwrap().path()).unwrap();
        assert_same_as_reference(&bytes);
        read += 1;
    }
    assert!(read >= 5, "{read} seeds under {}", seeds.display());
}

#[test]
fn an_unknown_field_of_an_any_value_is_checked_as_the_reference_checks_it() {
    // Found by the fuzz target: skipped unread, a string that is not UTF-8 passed here
    // while the reference, which buffers the field, refused the body.
    let mut body = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"eventName":"file.access","attributes":[
        {"key":"host.id","value":{"stringValue":"wks-1","futureValue":"PLACEHOLDER"}}]}]}]}]}"#
        .to_vec();
    let at = body.windows(11).position(|window| window == b"PLACEHOLDER").unwrap();
    body[at] = 0xff;
    assert!(by_reference(&body).is_none(), "the reference refuses it");
    assert!(borrowed(&body).is_none(), "read here");
    body[at] = b'P';
    assert_same_as_reference(&body);
}
