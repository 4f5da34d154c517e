#!/usr/bin/env bash
# All benchmarks: starts PostgreSQL and Redis on loopback (like the tests),
# runs the criterion benches and the propagation measurement, stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
services_start
trap services_stop EXIT
cargo bench --bench validate
cargo bench --features sqlite,postgres,redis --bench denylist
cargo bench --features postgres,redis --bench propagation
cargo run --release --example memory -- 1000000
