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
log "building the tests"
tests_dir="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tests_dir"' EXIT
cargo test --workspace --no-run --message-format=json-render-diagnostics >"$tests_dir/artifacts.json"
# Each test binary with its package folder (cargo test runs a binary there, with
# CARGO_MANIFEST_DIR set; the tests read nothing else of cargo's at run time).
python3 - "$tests_dir/artifacts.json" >"$tests_dir/binaries" <<'PY'
import json, os, sys
for line in open(sys.argv[1]):
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("executable") and message["profile"]["test"]:
        print(message["target"]["name"], os.path.dirname(message["manifest_path"]), message["executable"], sep="\t")
PY
run_binary() { (cd "$1" && CARGO_MANIFEST_DIR="$1" "$2"); }
# The end-to-end tests (servers, real SDKs, a broker, Chromium) spend much of their
# time waiting on processes and sockets: the crates' own tests run beside them, one
# binary after another as cargo would, and the end-to-end output is shown after theirs.
# The binaries are run directly: `cargo test -p`/`--exclude` would resolve features for
# fewer packages and build everything a second time.
log "tests: the crates' here, the end-to-end tests beside them (shown after)"
while IFS=$'\t' read -r name dir executable; do
  if [ "$name" = e2e ]; then
    run_binary "$dir" "$executable" >"$tests_dir/e2e.log" 2>&1 &
    e2e_pid=$!
  fi
done <"$tests_dir/binaries"
failed=()
while IFS=$'\t' read -r name dir executable; do
  [ "$name" = e2e ] && continue
  printf '\n     Running %s (%s)\n' "$name" "${executable#"$CARGO_TARGET_DIR/"}"
  run_binary "$dir" "$executable" || failed+=("$name")
done <"$tests_dir/binaries"
if [ -n "${e2e_pid-}" ]; then
  e2e_status=0
  wait "$e2e_pid" || e2e_status=$?
  log "end-to-end tests (tests/e2e):"
  cat "$tests_dir/e2e.log"
  [ "$e2e_status" = 0 ] || failed+=(e2e)
else
  log "no end-to-end test binary was built (target e2e): nothing ran them"
  failed+=(e2e)
fi
log "doc tests"
cargo test --workspace --doc --quiet || failed+=(doc-tests)
if [ "${#failed[@]}" -gt 0 ]; then
  log "tests failed in: ${failed[*]} (output above)"
  exit 1
fi

# A short run of the decoder fuzz targets on every CI run (a crash fails it); the rule and
# hunt targets link DataFusion with coverage instrumentation, a second full build, so
# they run by hand: scripts/fuzz.sh 600 rule_load hunt_guard.
fuzz_seconds="${CORDON_FUZZ_SECONDS:-10}"
if [ "$fuzz_seconds" != 0 ]; then
  log "fuzzing the decoders, ${fuzz_seconds}s each (CORDON_FUZZ_SECONDS; 0 skips)"
  bash "$here/fuzz.sh" "$fuzz_seconds" otlp_protobuf otlp_json otlp_traces flat_json opa_logs falco_alerts
fi
