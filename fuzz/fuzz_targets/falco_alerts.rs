//! Falco's alerts (`POST /v1/falco`): flattened, then mapped to the contract's kinds.
#![no_main]

use cordon_schemas::EventBatchBuilder;
use cordon_schemas::falco::alert_to_flat;
use cordon_schemas::flat::flat_json_to_event;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|bytes: &[u8]| {
    let alerts = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Array(alerts)) => alerts,
        Ok(alert @ Value::Object(_)) => vec![alert],
        _ => return,
    };
    let mut builder = EventBatchBuilder::with_capacity(16);
    for alert in &alerts {
        let event = alert_to_flat(alert).unwrap_or_else(|| alert.clone());
        if let Ok(record) = flat_json_to_event(&event) {
            let _ = builder.append(&record, 1_700_000_000_000_000_000);
        }
    }
    builder.finish();
});
