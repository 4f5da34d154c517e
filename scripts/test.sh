#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs and starts what the
# tests need (on 127.0.0.1 only), runs every check, stops the servers by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f scripts/services.sh ]; then
  # shellcheck source=scripts/services.sh
  source scripts/services.sh
  services_start
  trap services_stop EXIT
fi

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "links in README.md, CHANGELOG.md and docs/*.md"
if ! command -v python3 >/dev/null 2>&1; then
  # The link check is Python's standard library only.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing python3" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq python3 >/dev/null
  else
    echo "test.sh: python3 is missing: install it (apt-get install -y python3)" >&2
    exit 1
  fi
fi
python3 scripts/check_links.py

# `--workspace`: the library and the demo server (`demo/`, its own package).
step "clippy (all targets, all features, library and demo)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features

# The crate as crates.io would receive it (the files `include` lists in
# Cargo.toml), built on its own. A dry run uploads nothing and needs no
# token; `--allow-dirty` so that it also runs on a checkout with local
# changes. Cargo notes each test and bench it leaves out of the package.
step "publish dry run (the packaged crate builds on its own)"
cargo publish --dry-run -p jwt-revoke --allow-dirty

if [ -x scripts/fuzz.sh ]; then
  step "fuzz (bounded)"
  scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
fi

step "tests: aws_lc_rs backend only (core tests)"
cargo nextest run --no-fail-fast --no-default-features --features aws_lc_rs \
  --test revocation --test cache --test concurrency --test memory_store

step "tests: default features (rust_crypto only)"
cargo nextest run --no-fail-fast

step "doc tests: all features"
cargo test --doc --all-features

# Last, so the run closes on the full suite's summary.
# `--workspace` builds the demo package too; tests/demo_e2e.rs builds and
# starts its binary either way.
step "tests: all features (PostgreSQL, Redis, SQLite, axum, actix, demo end to end)"
cargo nextest run --workspace --all-features --no-fail-fast
