//! OTLP/gRPC and OTLP/HTTP protobuf bodies, through the decoder ingest uses (otlp_wire).
//! A body the decoder accepts must also be one prost accepts, with as many records.
#![no_main]

use cordon_schemas::EventBatchBuilder;
use cordon_schemas::otlp::count_records;
use cordon_schemas::otlp_wire::convert_encoded_request;
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;

fuzz_target!(|bytes: &[u8]| {
    let mut builder = EventBatchBuilder::with_capacity(16);
    let Ok((report, records)) = convert_encoded_request(bytes, 1_700_000_000_000_000_000, &mut builder) else {
        return;
    };
    let batch = builder.finish();
    assert_eq!(batch.num_rows(), report.accepted);
    assert_eq!(report.accepted + report.rejected.len(), records);
    if let Ok(request) = ExportLogsServiceRequest::decode(bytes) {
        assert_eq!(count_records(&request), records, "the two decoders disagree on the record count");
    }
});
