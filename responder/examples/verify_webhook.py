"""Verifying a Cordon response webhook (contract section 7), as a receiver should.

Accept a request only if all three hold:
- X-Cordon-Signature is "v1=" + hex HMAC-SHA256 of "<X-Cordon-Timestamp>.<raw body>"
  under the target's secret (compare in constant time);
- X-Cordon-Timestamp is within WINDOW_SECONDS of the receiver's clock (a captured
  request replayed later is refused; Cordon signs each try afresh, so retries pass);
- the Idempotency-Key (the action id) was not already carried out: a retry of an
  action that succeeded is answered 2xx without acting twice.

Use `verify()` in your receiver. From the command line (as Cordon's tests do):
    python verify_webhook.py SECRET TIMESTAMP SIGNATURE BODY_FILE [NOW]
prints "valid" or "invalid: <why>".
"""

import hashlib
import hmac
import sys
import time

WINDOW_SECONDS = 300


def verify(secret: bytes, timestamp: str, signature: str, body: bytes, now: float | None = None) -> tuple[bool, str]:
    """Whether a delivery is genuine and fresh; the reason when it is not."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False, "X-Cordon-Timestamp is not an integer"
    now = time.time() if now is None else now
    if abs(now - sent_at) > WINDOW_SECONDS:
        return False, f"timestamp {sent_at} is more than {WINDOW_SECONDS} s from now ({int(now)}): a replay or a skewed clock"
    expected = "v1=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return False, "the signature does not match the body and timestamp under this secret"
    return True, ""


def main(argv):
    secret, timestamp, signature, body_file = argv[1:5]
    now = float(argv[5]) if len(argv) > 5 else None
    with open(body_file, "rb") as handle:
        body = handle.read()
    ok, why = verify(secret.encode(), timestamp, signature, body, now)
    print("valid" if ok else f"invalid: {why}")


if __name__ == "__main__":
    main(sys.argv)
