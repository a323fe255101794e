#!/usr/bin/env bash
# Installs the engines `cordon bench peers` compares Cordon with, into the cache (not in
# the test command's path; run it once before the bench):
#   RSigma, the Rust Sigma engine (crates.io `rsigma`), and DuckDB (PyPI `duckdb`).
# RSigma 0.24 and later need Rust 1.96; this toolchain is 1.95, so 0.23.0, the newest
# that builds here, is pinned (the same pin as the rsigma-parser Cordon's Sigma import
# uses). Then: cargo run --release -- bench peers
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
require_cargo

RSIGMA_VERSION=0.23.0
DUCKDB_VERSION=2.0.1
peers="${CORDON_PEERS_DIR:-$CORDON_CACHE/peers}"
mkdir -p "$peers"

if [ "$("$peers/bin/rsigma" --version 2>/dev/null | head -1)" != "rsigma $RSIGMA_VERSION" ]; then
  log "installing RSigma $RSIGMA_VERSION (cargo install; a few minutes, once)"
  CARGO_TARGET_DIR="$CORDON_CACHE/peers-build" cargo install rsigma --version "$RSIGMA_VERSION" \
    --locked --root "$peers" --quiet
  rm -rf "$CORDON_CACHE/peers-build"
fi

if ! "$peers/venv/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
  log "installing DuckDB $DUCKDB_VERSION (pip, in $peers/venv)"
  python3 -m venv "$peers/venv" 2>/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$peers/venv"
  }
  "$peers/venv/bin/pip" install --quiet --disable-pip-version-check "duckdb==$DUCKDB_VERSION"
fi
log "peers ready in $peers: $("$peers/bin/rsigma" --version | head -1), duckdb $("$peers/venv/bin/python" -c 'import duckdb; print(duckdb.__version__)')"
