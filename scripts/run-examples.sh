#!/usr/bin/env bash
# Runs every example as a single process, under mpirun -n 1..4, and in spawn mode
# (POOL_WORKERS=2), each with a timeout: they check their own results; this checks that they
# pass, not how fast they are.
#   scripts/run-examples.sh [--release]
# By default the examples are the debug build, which `cargo test --workspace` has made
# already (the workspace's Cargo.toml optimizes the examples' own code a little there, so
# that those that compute are quick; overflow checks and debug assertions stay on); with
# --release, the release build that users run.
set -euo pipefail
cd "$(dirname "$0")/.."
# POOL_TEST_MPIRUN names another launcher (mpirun.mpich, with the examples built by
# MPICC=mpicc.mpich into their own CARGO_TARGET_DIR: scripts/test.sh does so).
launcher=${POOL_TEST_MPIRUN:-mpirun}
profile=debug
build=()
case "${1:-}" in
--release) profile=release build=(--release) ;;
"") ;;
*) echo "usage: scripts/run-examples.sh [--release]" >&2; exit 2 ;;
esac
target=${CARGO_TARGET_DIR:-target}/$profile

source scripts/mpi-env.sh
cargo build "${build[@]}" --quiet -p examples --examples
# Runs wait more than they compute (start-up of mpirun and MPI): two at a time
# (POOL_EXAMPLE_JOBS). Each run's output goes to a private file, shown if it fails.
parallel=${POOL_EXAMPLE_JOBS:-2}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
runs=0
# run CHECK COMMAND...: starts COMMAND in the background, with a timeout; it passes when it
# exits with 0 and CHECK (a function of its output file, or `true`) agrees.
run() {
  local check=$1 id=$runs
  shift
  runs=$((runs + 1))
  (
    if timeout 120 "$@" >"$dir/$id.out" 2>&1 && "$check" "$dir/$id.out"; then
      touch "$dir/$id.passed"
    else
      { echo "FAILED: $*"; cat "$dir/$id.out"; } >"$dir/$id.failed"
    fi
  ) &
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
}
# The benchmark and the simulation print one JSON line, with an "error" field if a check of
# theirs failed.
bench_line() { grep -q '^{"system"' "$1" && ! grep -q '"error"' "$1"; }
scale_line() { grep -q '^{"workers":1000' "$1" && ! grep -q '"error"' "$1"; }

for example in hello_pool analyze_runs many_tasks handles shared_table worker_state fold_energy ordered_stream worker_context; do
  bin="$target/examples/$example"
  run true "$bin"
  for n in 1 2 3 4; do
    run true "$launcher" -n "$n" "$bin"
  done
  # Spawn mode (Open MPI: MPICH 4.0 cannot spawn from a single process).
  if [ "$launcher" = mpirun ]; then run true env POOL_WORKERS=2 "$bin"; fi
done
# The benchmark, tiny sizes: proves it runs and its checks pass (no "error" field), not speed.
bench=("$launcher" -n 2 "$target/examples/bench")
for system in pool raw; do
  run bench_line "${bench[@]}" --system "$system" --workload noop --tasks 10000
  run bench_line "${bench[@]}" --system "$system" --workload sleep --tasks 20 --sleep-max-ms 2
  run bench_line "${bench[@]}" --system "$system" --workload payload --tasks 10 --payload-mib 0.25
done
run bench_line "${bench[@]}" --workload payload --tasks 10 --payload-mib 0.25 --bulk
run bench_line "${bench[@]}" --workload noop --tasks 10000 --unordered --chunksize 7 --prefetch 3
# The scale simulation (one process, no MPI), small: its checks pass and it prints its line.
run scale_line "$target/examples/scale" --workers 1000 --tasks 200000 --mean-ms 1
wait

passed=$(find "$dir" -name '*.passed' | wc -l)
failed=$(find "$dir" -name '*.failed' | wc -l)
for f in "$dir"/*.failed; do [ -e "$f" ] && cat "$f"; done
echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -eq "$runs" ]
