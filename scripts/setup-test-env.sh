#!/usr/bin/env bash
# Installs what the tests need besides the Rust toolchain: a Python virtualenv with the
# real OpenTelemetry SDK exporters, DuckDB and confluent-kafka, the MCP SDK and the
# OpenAI Agents SDK with its GenAI instrumentation, Debian's chromium and prometheus for
# the console and metrics tests, the tansu Kafka broker (from crates.io) for the Kafka
# tests, and the Claude Code CLI (npm) for the agent tests. Idempotent; a second run
# takes seconds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"

requirements="$here/../tests/python/requirements.txt"
stamp="$CORDON_VENV/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"

if ! command -v python3 >/dev/null 2>&1; then
  log "installing python3 (Debian packages)"
  apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
fi
packages=()
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || packages+=(chromium-driver)
command -v prometheus >/dev/null 2>&1 || packages+=(prometheus)
if [ "${#packages[@]}" -gt 0 ]; then
  log "installing ${packages[*]} (Debian packages) for the console and metrics tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi
if [ ! -x "$CORDON_VENV/bin/python" ]; then
  log "creating the test virtualenv in $CORDON_VENV"
  if ! python3 -m venv "$CORDON_VENV" 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$CORDON_VENV"
  fi
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python test dependencies"
  "$CORDON_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" > "$stamp"
fi

ensure_tansu
ensure_claude_code
