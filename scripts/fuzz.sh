#!/usr/bin/env bash
# Fuzzes what senders and rule authors reach (cargo fuzz with libFuzzer): each target
# for SECONDS (default 20), starting from the seeds in the repository (fuzz/corpus/,
# fuzz/rules/corpus/, kept small) plus what earlier runs found (kept in the cache).
# Prints each target's executions; any crash fails the run and leaves its input under
# fuzz/artifacts/<target>/ (or fuzz/rules/artifacts/) to be fixed and added as a seed.
#   scripts/fuzz.sh [SECONDS] [TARGET ...]
# The decoders (fuzz/) build in release with AddressSanitizer; the rule and hunt
# targets (fuzz/rules/) link DataFusion and build in debug without a sanitizer.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
require_cargo
root="$here/.."

seconds="${1:-20}"
shift || true
decoders=(otlp_protobuf otlp_json otlp_traces flat_json opa_logs falco_alerts)
rules=(rule_load hunt_guard)
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=("${decoders[@]}" "${rules[@]}")

# libFuzzer's instrumentation needs nightly flags: the nightly toolchain if there is
# one, else the stable compiler with its unstable flags allowed.
if rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=(+nightly)
else
  toolchain=()
  export RUSTC_BOOTSTRAP=1
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  log "installing cargo-fuzz 0.13 (cargo install, once)"
  CARGO_TARGET_DIR="$CORDON_CACHE/cargo-fuzz-build" cargo install cargo-fuzz --version 0.13.2 --locked --quiet
  rm -rf "$CORDON_CACHE/cargo-fuzz-build"
fi

is_rule_target() {
  local name
  for name in "${rules[@]}"; do [ "$name" = "$1" ] && return 0; done
  return 1
}

group_of() {
  if is_rule_target "$1"; then echo rules; else echo decoders; fi
}

# Fuzzes one target (its group built already) for $seconds; its summary (or the tail of
# libFuzzer's output, on a crash) goes to $out/<target>, its status to <target>.rc.
fuzz_one() {
  local target="$1" dir flags
  if [ "$(group_of "$target")" = rules ]; then
    dir="$root/fuzz/rules" flags=(--dev --sanitizer none)
  else
    dir="$root/fuzz" flags=(-O)
  fi
  export CARGO_TARGET_DIR="$CORDON_CACHE/fuzz-target-$(group_of "$target")"
  cd "$dir"
  local found="$CORDON_CACHE/fuzz-corpus/$target" output runs corpus
  mkdir -p "$found"
  if ! output="$(cargo "${toolchain[@]}" fuzz run --fuzz-dir "$dir" "${flags[@]}" "$target" "$found" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1)"; then
    {
      printf '%s\n' "$output" | tail -40
      if compgen -G "$dir/artifacts/$target/*" >/dev/null; then
        echo "$target crashed: its input is under ${dir#"$root/"}/artifacts/$target/"
      else
        echo "$target did not run (see the output above)"
      fi
    } >"$out/$target"
    echo 1 >"$out/$target.rc"
    return
  fi
  runs="$(printf '%s\n' "$output" | sed -n 's/^stat::number_of_executed_units: *//p')"
  corpus="$(find "$found" "corpus/$target" -type f | wc -l)"
  printf '%-14s %10s executions in %ss, 0 crashes, corpus %s inputs\n' "$target" "$runs" "$seconds" "$corpus" >"$out/$target"
  echo 0 >"$out/$target.rc"
}

built=()
for target in "${targets[@]}"; do
  group="$(group_of "$target")"
  [[ " ${built[*]-} " == *" $group "* ]] && continue
  if [ "$group" = rules ]; then
    dir="$root/fuzz/rules" flags=(--dev --sanitizer none)
  else
    dir="$root/fuzz" flags=(-O)
  fi
  log "building the $group fuzz targets (${flags[*]})"
  (cd "$dir" && CARGO_TARGET_DIR="$CORDON_CACHE/fuzz-target-$group" cargo "${toolchain[@]}" fuzz build --fuzz-dir "$dir" "${flags[@]}")
  built+=("$group")
done

# libFuzzer uses one core a target: as many targets at once as there are cores
# (CORDON_FUZZ_JOBS), so six targets fuzz in three rounds on two cores, not six.
jobs="${CORDON_FUZZ_JOBS:-$(nproc)}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
log "fuzzing ${targets[*]} for ${seconds}s each, $jobs at a time"
for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  fuzz_one "$target" &
done
wait
failed=0
for target in "${targets[@]}"; do
  cat "$out/$target"
  [ "$(cat "$out/$target.rc" 2>/dev/null)" = 0 ] || failed=1
done
exit "$failed"
