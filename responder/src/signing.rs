//! Webhook signatures (contract section 7): `X-Cordon-Signature: v1=<hex>` where hex is
//! HMAC-SHA256 of `"<timestamp>.<body>"` under the target's secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Secret;

pub const SIGNATURE_HEADER: &str = "X-Cordon-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Cordon-Timestamp";
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &Secret, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.expose()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Why a received webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no {SIGNATURE_HEADER} header, or not of the form v1=<hex>")]
    Malformed,
    #[error("the signature does not match the body and timestamp (wrong secret, or the body was altered)")]
    Mismatch,
    #[error("the timestamp is {0} s away from now, beyond the tolerance (a replay, or a skewed clock)")]
    Stale(i64),
}

/// Checks a received signature in constant time, and that `timestamp` is within
/// `tolerance_s` of `now` so a captured request cannot be replayed later.
pub fn verify(
    secret: &Secret,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance_s: i64,
) -> Result<(), VerifyError> {
    let hex_part = header.trim().strip_prefix("v1=").ok_or(VerifyError::Malformed)?;
    let presented = hex::decode(hex_part).map_err(|_| VerifyError::Malformed)?;
    mac(secret, timestamp, body)
        .verify_slice(&presented)
        .map_err(|_| VerifyError::Mismatch)?;
    let skew = (now - timestamp).abs();
    if skew > tolerance_s {
        return Err(VerifyError::Stale(skew));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_value_computed_by_python_hmac() {
        // python3 -c "import hmac,hashlib; print(hmac.new(b'0123456789abcdef0123456789abcdef',
        //   b'1700000000.{\"action\":\"isolate_host\"}', hashlib.sha256).hexdigest())"
        let secret = Secret::new("0123456789abcdef0123456789abcdef");
        assert_eq!(
            sign(&secret, 1_700_000_000, br#"{"action":"isolate_host"}"#),
            "v1=d7109b1786c083e75746c1542fdc0ad8cac7abf06e07abffcdedc5a4b199f489"
        );
    }

    #[test]
    fn verifies_its_own_signature_and_refuses_changes() {
        let secret = Secret::new("0123456789abcdef0123456789abcdef");
        let body = br#"{"action":"isolate_host"}"#;
        let header = sign(&secret, 1_700_000_000, body);
        assert!(header.starts_with("v1=") && header.len() == 3 + 64);
        assert_eq!(
            verify(&secret, 1_700_000_000, body, &header, 1_700_000_010, 300),
            Ok(())
        );
        assert_eq!(
            verify(&secret, 1_700_000_000, b"{}", &header, 1_700_000_000, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&secret, 1_700_000_001, body, &header, 1_700_000_000, 300),
            Err(VerifyError::Mismatch),
            "the timestamp is signed too"
        );
        assert_eq!(
            verify(&secret, 1_700_000_000, body, &header, 1_700_001_000, 300),
            Err(VerifyError::Stale(1000))
        );
        assert_eq!(
            verify(&secret, 1_700_000_000, body, "sha1=abc", 1_700_000_000, 300),
            Err(VerifyError::Malformed)
        );
    }
}
