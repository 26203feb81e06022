#!/usr/bin/env bash
# Runs every example as a single process and under mpirun -n 1..4, each with a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mpi-env.sh
cargo build --release --quiet -p examples --examples

passed=0 failed=0
run() {
  if timeout 120 "$@" >/tmp/pool-example.out 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAILED: $*"; cat /tmp/pool-example.out
  fi
}
for example in hello_pool analyze_runs many_tasks; do
  bin="target/release/examples/$example"
  run "$bin"
  for n in 1 2 3 4; do
    run mpirun -n "$n" "$bin"
  done
done
echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
