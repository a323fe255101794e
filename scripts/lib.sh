# Shared settings for Cordon's scripts: where caches live, so repeated runs are warm.
# Sourced, not run.
CORDON_CACHE="${CORDON_CACHE:-$HOME/.cache/cordon}"
# The build cache lives outside the clone so a fresh clone (CI) reuses it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CORDON_CACHE/target}"
CORDON_VENV="${CORDON_VENV:-$CORDON_CACHE/venv}"
export CORDON_VENV
mkdir -p "$CORDON_CACHE"

log() { printf '\033[1m[cordon]\033[0m %s\n' "$*" >&2; }

require_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    log "cargo not found: install the Rust toolchain (https://rustup.rs) and run again"
    exit 1
  fi
}
