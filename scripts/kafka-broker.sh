#!/usr/bin/env bash
# Runs a Kafka-protocol broker on 127.0.0.1 for trying the Kafka source and for
# `cordon bench kafka`: tansu 0.6.0 with its SQLite storage engine (installed on first
# use), with the default topics created. Ctrl-C stops it; its data stays in the cache.
# usage: scripts/kafka-broker.sh [PORT]   (default 9092)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
require_cargo
ensure_tansu
port="${1:-9092}"
dir="$CORDON_CACHE/kafka-broker"
mkdir -p "$dir"
cd "$dir"
url="tcp://127.0.0.1:$port"
"$CORDON_TANSU" broker --listener-url "$url" --advertised-listener-url "$url" --storage-engine sqlite://tansu.db &
broker=$!
trap 'kill "$broker" 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
for topic in agent-events:4 cordon-dead-letters:1 cordon-alerts:4; do
  "$CORDON_TANSU" topic create "${topic%%:*}" --partitions "${topic##*:}" --broker "$url" >/dev/null 2>&1 || true
done
log "tansu on 127.0.0.1:$port (topics agent-events, cordon-dead-letters, cordon-alerts); Ctrl-C stops it"
wait "$broker"
