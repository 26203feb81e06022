#!/usr/bin/env bash
# Runs every example as a single process and under mpirun -n 1..4, each with a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
# POOL_TEST_MPIRUN names another launcher (mpirun.mpich, with the examples built by
# MPICC=mpicc.mpich into their own CARGO_TARGET_DIR: scripts/test.sh does so).
launcher=${POOL_TEST_MPIRUN:-mpirun}
target=${CARGO_TARGET_DIR:-target}

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
  bin="$target/release/examples/$example"
  run "$bin"
  for n in 1 2 3 4; do
    run "$launcher" -n "$n" "$bin"
  done
done
# The benchmark, tiny sizes: proves it runs and its checks pass (no "error" field), not speed.
bench_check() {
  if timeout 120 "$launcher" -n 2 "$target/release/examples/bench" "$@" >/tmp/pool-bench.out 2>&1 &&
    grep -q '^{"system"' /tmp/pool-bench.out && ! grep -q '"error"' /tmp/pool-bench.out; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAILED: bench $*"; cat /tmp/pool-bench.out
  fi
}
for system in pool raw; do
  bench_check --system "$system" --workload noop --tasks 10000
  bench_check --system "$system" --workload sleep --tasks 20 --sleep-max-ms 2
  bench_check --system "$system" --workload payload --tasks 10 --payload-mib 0.25
done
bench_check --workload payload --tasks 10 --payload-mib 0.25 --bulk
bench_check --workload noop --tasks 10000 --unordered --chunksize 7 --prefetch 3

echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
