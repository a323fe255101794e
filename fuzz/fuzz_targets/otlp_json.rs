//! OTLP/HTTP JSON bodies through the reader ingest uses (`otlp_json`, strings borrowed).
//! A body it reads must be one opentelemetry-proto's serde reads, with the same rows;
//! a body it declines goes to that reference, as in ingest.
#![no_main]

use cordon_schemas::EventBatchBuilder;
use cordon_schemas::otlp::{convert_request, count_records};
use cordon_schemas::otlp_json::convert_borrowed;
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;

const RECEIVED: i64 = 1_700_000_000_000_000_000;

/// The rows without `event_id`, which each builder assigns when a record has none.
fn rows(mut builder: EventBatchBuilder) -> impl PartialEq + std::fmt::Debug {
    let batch = builder.finish();
    let keep: Vec<usize> = (0..batch.num_columns())
        .filter(|i| batch.schema().field(*i).name() != "event_id")
        .collect();
    batch.project(&keep).expect("columns exist")
}

fuzz_target!(|bytes: &[u8]| {
    let mut ours = EventBatchBuilder::with_capacity(16);
    let read = convert_borrowed(bytes, RECEIVED, &mut ours);
    let reference = serde_json::from_slice::<ExportLogsServiceRequest>(bytes);
    match (read, reference) {
        (Ok((report, records)), Ok(request)) => {
            let mut theirs = EventBatchBuilder::with_capacity(16);
            let expected = convert_request(&request, RECEIVED, &mut theirs);
            assert_eq!(records, count_records(&request));
            assert_eq!(report.accepted, expected.accepted);
            assert_eq!(report.rejected, expected.rejected);
            assert_eq!(rows(ours), rows(theirs), "the rows differ from the reference's");
        }
        (Ok(_), Err(error)) => panic!("read here, refused by the reference: {error}"),
        (Err(_), Ok(request)) => {
            let mut theirs = EventBatchBuilder::with_capacity(16);
            let report = convert_request(&request, RECEIVED, &mut theirs);
            assert_eq!(theirs.finish().num_rows(), report.accepted);
            assert_eq!(report.accepted + report.rejected.len(), count_records(&request));
        }
        (Err(_), Err(_)) => {}
    }
});
