#!/usr/bin/env bash
# The whole pipeline on embedded defaults: builds cordon, starts the OTLP receivers and
# storage on the contract ports (4317 gRPC, 4318 HTTP), feeds them a minute of simulated
# agent telemetry with every attack of the contract injected, and shows what arrived.
# Extra arguments go to `cordon demo` (e.g. --duration 5m --rate 500 --exit).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
require_cargo
cd "$here/.."

log "building cordon (cold: about 5 minutes on 2 cores; warm: seconds)"
cargo build --bin cordon --quiet
data_dir="${CORDON_DEMO_DIR:-data/demo-$(date -u +%Y%m%dT%H%M%S)}"
log "data goes to $data_dir"
exec "$CARGO_TARGET_DIR/debug/cordon" demo --data-dir "$data_dir" "$@"
