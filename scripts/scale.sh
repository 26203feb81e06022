#!/usr/bin/env bash
# Remakes the scale tables of BENCHMARKS.md and figures/scale.svg: the real master against
# simulated workers (examples/scale.rs, shared/BENCH.md "Scale"), no MPI needed.
#   scripts/scale.sh [grid|targets|all]   (default all; JSON lines: target/scale-*.jsonl)
# grid: W = 100 .. 100,000 and mean task time 0.1 .. 100 ms (lognormal, sigma 1), tasks for
#   10 s of ideal makespan capped at 2,000,000; policies pool, classic (one task per message,
#   one in flight) and greedy (the bound: list scheduling at no cost). About 4 minutes.
# targets: the issue's four configurations, pool and greedy, at 10 s of ideal makespan
#   (100,000,000 tasks), and W = 100,000 also at 100 s (1,000,000,000 tasks: at 10 s the
#   longest of the draws, about 1.6 s, bounds any schedule near 0.88). About 14 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
cargo build --release --quiet -p examples --example scale
scale=target/release/examples/scale

if [ "$what" = grid ] || [ "$what" = all ]; then
  out=target/scale-grid.jsonl
  : >"$out"
  for workers in 100 1000 10000 100000; do
    for mean in 0.1 1 10 100; do
      tasks=$(python3 -c "print(min(int(10e3 * $workers / $mean), 2_000_000))")
      for policy in pool classic greedy; do
        timeout 600 "$scale" --workers "$workers" --tasks "$tasks" --mean-ms "$mean" \
          --policy "$policy" >>"$out"
      done
    done
  done
  python3 scripts/scale_report.py grid "$out" figures/scale.svg
fi

if [ "$what" = targets ] || [ "$what" = all ]; then
  out=target/scale-targets.jsonl
  : >"$out"
  for args in "--workers 10000 --mean-ms 1 --tasks 100000000" \
    "--workers 100000 --mean-ms 10 --tasks 100000000" \
    "--workers 100000 --mean-ms 10 --tasks 1000000000" \
    "--workers 1000 --mean-ms 0.1 --tasks 100000000" \
    "--workers 10000 --mean-ms 1 --tasks 100000000 --stragglers 0.01 --slowdown 5"; do
    for policy in pool greedy; do
      # shellcheck disable=SC2086
      timeout 1800 "$scale" $args --policy "$policy" >>"$out"
    done
  done
  python3 scripts/scale_report.py targets "$out"
fi
