//! OTLP/HTTP JSON bodies, decoded as ingest decodes them, then converted into a batch.
#![no_main]

use cordon_schemas::EventBatchBuilder;
use cordon_schemas::otlp::{convert_request, count_records};
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;

fuzz_target!(|bytes: &[u8]| {
    let Ok(request) = serde_json::from_slice::<ExportLogsServiceRequest>(bytes) else {
        return;
    };
    let mut builder = EventBatchBuilder::with_capacity(16);
    let report = convert_request(&request, 1_700_000_000_000_000_000, &mut builder);
    let batch = builder.finish();
    assert_eq!(batch.num_rows(), report.accepted);
    assert_eq!(report.accepted + report.rejected.len(), count_records(&request));
});
