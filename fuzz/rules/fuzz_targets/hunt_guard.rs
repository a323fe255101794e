//! The hunt guard on any text: `guard::single_query` must answer (a statement or a
//! refusal) without panicking or overflowing the stack, and never pass what it says it
//! refuses (too long, or nested past its bound).
#![no_main]

use cordon_detections::guard;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(statement) = guard::single_query(sql) {
        assert!(sql.len() <= guard::MAX_SQL_BYTES, "a query over the size bound was passed");
        guard::check_nesting(&statement).expect("a passed query passes its own nesting check");
    }
});
