#!/usr/bin/env bash
# Sets up what the tests need (a Python virtualenv with the real OpenTelemetry SDK
# exporters and DuckDB) and runs every check: formatting, clippy, unit and end-to-end tests,
# then a short fuzz run of the decoders.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
require_cargo
ensure_build_packages
cd "$here/.."

bash "$here/setup-test-env.sh"
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component" >/dev/null 2>&1 || log "no $component on this toolchain: skipping that check"
  fi
done
if cargo fmt --version >/dev/null 2>&1; then
  log "checking formatting"
  cargo fmt --all -- --check
fi
if cargo clippy --version >/dev/null 2>&1; then
  log "clippy"
  cargo clippy --all-targets --workspace --quiet -- -D warnings
fi
# Every declared dependency is used (cargo machete reads the sources; installed once).
if ! command -v cargo-machete >/dev/null 2>&1; then
  log "installing cargo-machete 0.9 (cargo install, once)"
  CARGO_TARGET_DIR="$CORDON_CACHE/cargo-machete-build" cargo install cargo-machete --version 0.9.2 --locked --quiet
  rm -rf "$CORDON_CACHE/cargo-machete-build"
fi
log "unused dependencies"
cargo machete
log "tests"
cargo test --workspace
# A short run of the decoder fuzz targets on every CI run (a crash fails it); the rule and
# hunt targets link DataFusion with coverage instrumentation, a second full build, so
# they run by hand: scripts/fuzz.sh 600 rule_load hunt_guard.
fuzz_seconds="${CORDON_FUZZ_SECONDS:-10}"
if [ "$fuzz_seconds" != 0 ]; then
  log "fuzzing the decoders, ${fuzz_seconds}s each (CORDON_FUZZ_SECONDS; 0 skips)"
  bash "$here/fuzz.sh" "$fuzz_seconds" otlp_protobuf otlp_json otlp_traces flat_json opa_logs falco_alerts
fi
