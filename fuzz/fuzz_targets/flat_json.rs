//! Flat JSON events (Kafka messages, /v1/events bodies): one event or an array of them.
#![no_main]

use cordon_schemas::EventBatchBuilder;
use cordon_schemas::flat::flat_json_to_event;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|bytes: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };
    let events = match &value {
        Value::Array(events) => events.iter().collect::<Vec<_>>(),
        event => vec![event],
    };
    let mut builder = EventBatchBuilder::with_capacity(16);
    for event in events {
        if let Ok(record) = flat_json_to_event(event) {
            let _ = builder.append(&record, 1_700_000_000_000_000_000);
        }
    }
    builder.finish();
});
