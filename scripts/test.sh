#!/usr/bin/env bash
# Sets up what the tests need (a Python virtualenv with the real OpenTelemetry SDK
# exporters and DuckDB) and runs every check: formatting, clippy, unit and end-to-end tests.
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
log "tests"
cargo test --workspace
