#!/usr/bin/env bash
# Runs every example as a single process, under mpirun -n 1..4, and in spawn mode
# (POOL_WORKERS=2), each with a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
# POOL_TEST_MPIRUN names another launcher (mpirun.mpich, with the examples built by
# MPICC=mpicc.mpich into their own CARGO_TARGET_DIR: scripts/test.sh does so).
launcher=${POOL_TEST_MPIRUN:-mpirun}
target=${CARGO_TARGET_DIR:-target}

source scripts/mpi-env.sh
cargo build --release --quiet -p examples --examples
# Output of one run, shown if it fails; private, so parallel runs of this script do not mix.
out=$(mktemp)
trap 'rm -f "$out"' EXIT

passed=0 failed=0
run() {
  if timeout 120 "$@" >"$out" 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAILED: $*"; cat "$out"
  fi
}
for example in hello_pool analyze_runs many_tasks handles shared_table worker_state fold_energy ordered_stream worker_context; do
  bin="$target/release/examples/$example"
  run "$bin"
  for n in 1 2 3 4; do
    run "$launcher" -n "$n" "$bin"
  done
  # Spawn mode (Open MPI: MPICH 4.0 cannot spawn from a single process).
  if [ "$launcher" = mpirun ]; then run env POOL_WORKERS=2 "$bin"; fi
done
# The benchmark, tiny sizes: proves it runs and its checks pass (no "error" field), not speed.
bench_check() {
  if timeout 120 "$launcher" -n 2 "$target/release/examples/bench" "$@" >"$out" 2>&1 &&
    grep -q '^{"system"' "$out" && ! grep -q '"error"' "$out"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAILED: bench $*"; cat "$out"
  fi
}
for system in pool raw; do
  bench_check --system "$system" --workload noop --tasks 10000
  bench_check --system "$system" --workload sleep --tasks 20 --sleep-max-ms 2
  bench_check --system "$system" --workload payload --tasks 10 --payload-mib 0.25
done
bench_check --workload payload --tasks 10 --payload-mib 0.25 --bulk
bench_check --workload noop --tasks 10000 --unordered --chunksize 7 --prefetch 3

# The scale simulation (one process, no MPI), small: its checks pass and it prints its line.
if timeout 120 "$target/release/examples/scale" --workers 1000 --tasks 200000 --mean-ms 1 >"$out" 2>&1 &&
  grep -q '^{"workers":1000' "$out" && ! grep -q '"error"' "$out"; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  echo "FAILED: scale"; cat "$out"
fi

echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
