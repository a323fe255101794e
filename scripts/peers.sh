#!/usr/bin/env bash
# Installs the engines `cordon bench peers` compares Cordon with, into the cache (not in
# the test command's path; run it once before the bench):
#   RSigma, the Rust Sigma engine (crates.io `rsigma`), and DuckDB (PyPI `duckdb`).
# RSigma 0.26 needs Rust 1.96: built with the stable toolchain when it is that new, else
# with an installed nightly (only RSigma is; Cordon stays on stable). Not `--locked`: its
# lock file pins webpki-roots 1.0.11, which this machine's crates.io mirror does not have,
# so cargo resolves the newest versions the mirror has within the manifest's ranges.
# Then: cargo run --release -- bench peers
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
require_cargo

RSIGMA_VERSION=0.26.0
DUCKDB_VERSION=2.0.1
peers="${CORDON_PEERS_DIR:-$CORDON_CACHE/peers}"
mkdir -p "$peers"

if [ "$("$peers/bin/rsigma" --version 2>/dev/null | head -1)" != "rsigma $RSIGMA_VERSION" ]; then
  toolchain=()
  if ! rustc --version | awk '{ split($2, v, "."); exit !(v[1] > 1 || v[2] >= 96) }'; then
    if rustup run nightly rustc --version >/dev/null 2>&1; then
      toolchain=(+nightly)
    else
      echo "RSigma $RSIGMA_VERSION needs Rust 1.96 or later: run 'rustup toolchain install nightly' (or update stable) and run this again" >&2
      exit 1
    fi
  fi
  log "installing RSigma $RSIGMA_VERSION (cargo ${toolchain[*]:-} install; a few minutes, once)"
  CARGO_TARGET_DIR="$CORDON_CACHE/peers-build" cargo "${toolchain[@]}" install rsigma --version "$RSIGMA_VERSION" \
    --root "$peers" --quiet
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
