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

# Debian packages the build links against: libssl (TLS and SASL for Kafka, through
# librdkafka) and pkg-config to find it. Installed once; a no-op afterwards.
ensure_build_packages() {
  local missing=()
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  [ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} (Debian packages) for the build"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# tansu 0.6.0 with its SQLite storage engine: the Kafka-protocol broker the Kafka tests
# and `scripts/kafka-broker.sh` run (README, "Kafka"). A debug build: 5 minutes cold
# instead of 15, fast enough here. Built in its own target dir, away from Cordon's cache.
CORDON_TANSU="$CORDON_CACHE/tansu/bin/tansu"
ensure_tansu() {
  if [ ! -x "$CORDON_TANSU" ]; then
    log "installing the tansu Kafka broker 0.6.0 (cargo install; about 5 minutes, once)"
    CARGO_TARGET_DIR="$CORDON_CACHE/tansu-build" cargo install tansu --version 0.6.0 --locked --debug \
      --features libsql --root "$CORDON_CACHE/tansu" --quiet
    rm -rf "$CORDON_CACHE/tansu-build"
  fi
}

# The real Claude Code CLI (npm, pinned) that the agent tests drive and the demo can
# run: installed into the cache, not globally. Node.js from Debian if missing.
CLAUDE_CODE_VERSION=2.1.332
CORDON_AGENTS="$CORDON_CACHE/agents"
ensure_claude_code() {
  if [ "$(cat "$CORDON_AGENTS/.version" 2>/dev/null)" != "$CLAUDE_CODE_VERSION" ] \
    || [ ! -x "$CORDON_AGENTS/node_modules/.bin/claude" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      log "installing Node.js and npm (Debian packages) for the Claude Code CLI"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
    log "installing the Claude Code CLI $CLAUDE_CODE_VERSION (npm) for the agent tests"
    mkdir -p "$CORDON_AGENTS"
    (cd "$CORDON_AGENTS" && npm install --no-audit --no-fund --silent --loglevel=error \
      "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" >/dev/null)
    echo "$CLAUDE_CODE_VERSION" > "$CORDON_AGENTS/.version"
  fi
}
