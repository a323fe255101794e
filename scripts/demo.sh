#!/usr/bin/env bash
# The whole pipeline on embedded defaults: builds cordon, starts a webhook sink (the
# stand-in for the IdP and EDR that carry out responses), then the OTLP receivers,
# storage, rules, alert API and responder on the contract ports, and feeds them a
# minute of simulated agent telemetry with every attack of the contract injected.
# Extra arguments go to `cordon demo` (e.g. --duration 5m --rate 500 --exit).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
require_cargo
ensure_build_packages
cd "$here/.."

log "building cordon (cold: about 15 minutes on 2 cores, dependencies optimized; warm: seconds)"
cargo build --bin cordon --quiet
cordon="$CARGO_TARGET_DIR/debug/cordon"
data_dir="${CORDON_DEMO_DIR:-data/demo-$(date -u +%Y%m%dT%H%M%S)}"
log "data goes to $data_dir"

# The sink and Cordon share a secret made for this run; it is never printed.
CORDON_SINK_SECRET="$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
export CORDON_SINK_SECRET
sink_listen="${CORDON_SINK_LISTEN:-127.0.0.1:9400}"
"$cordon" sink --listen "$sink_listen" &
sink_pid=$!
trap 'kill "$sink_pid" 2>/dev/null || true' EXIT
"$cordon" demo --data-dir "$data_dir" --sink "http://$sink_listen" "$@"
