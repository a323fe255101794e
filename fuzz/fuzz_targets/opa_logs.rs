//! OPA decision-log uploads: an array of decisions, each mapped to a flat event.
#![no_main]

use cordon_schemas::EventBatchBuilder;
use cordon_schemas::flat::flat_json_to_event;
use cordon_schemas::opa::decision_to_flat;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|bytes: &[u8]| {
    let entries = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Array(entries)) => entries,
        Ok(entry @ Value::Object(_)) => vec![entry],
        _ => return,
    };
    let mut builder = EventBatchBuilder::with_capacity(16);
    for entry in &entries {
        let event = decision_to_flat(entry).unwrap_or_else(|| entry.clone());
        if let Ok(record) = flat_json_to_event(&event) {
            let _ = builder.append(&record, 1_700_000_000_000_000_000);
        }
    }
    builder.finish();
});
