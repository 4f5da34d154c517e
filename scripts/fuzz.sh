#!/usr/bin/env bash
# Bounded fuzzing of the token pipeline and the cutoff merge.
#   scripts/fuzz.sh [seconds-per-target]   (default 10; CI uses a few seconds)
# Longer runs: scripts/fuzz.sh 3600
# Installs cargo-fuzz when missing. Only the stable toolchain exists here, so
# RUSTC_BOOTSTRAP=1 lets it use the sanitizer flags cargo-fuzz needs.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked --quiet
fi
# Keep the fuzz build apart from the main target directory.
unset CARGO_TARGET_DIR
for target in validate cutoff_merge; do
  mkdir -p "fuzz/corpus/$target"
  # Checked-in seeds (valid tokens the guard accepts, so the differential
  # check in `validate` is reached from the first run); new units go to
  # fuzz/corpus only.
  seeds=()
  if [ -d "fuzz/seeds/$target" ]; then seeds=("fuzz/seeds/$target"); fi
  echo "fuzz.sh: $target for ${secs}s" >&2
  cargo fuzz run "$target" "fuzz/corpus/$target" ${seeds[@]+"${seeds[@]}"} -- \
    -max_total_time="$secs" -max_len=16384 -rss_limit_mb=2048 -print_final_stats=1
done
