#!/usr/bin/env bash
# Reproduces BENCHMARKS.md: every row runs pool and raw alternately, REPEATS times each, in
# one session, and reports medians and the pool/raw ratio as a Markdown table.
#   scripts/bench.sh [REPEATS]   (default 5; raw JSON lines go to target/bench.jsonl)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-mpi.sh
source scripts/mpi-env.sh
repeats=${1:-5}
cargo build --release --quiet -p examples --examples
bench=target/release/examples/bench
out=target/bench.jsonl
: >"$out"

# row label | ranks | arguments shared by both systems | pool-only arguments
rows=(
  "noop, defaults|2|--workload noop --tasks 2000000|"
  "noop, defaults|3|--workload noop --tasks 1000000|"
  "noop, chunksize 1, prefetch 1|2|--workload noop --tasks 300000|--chunksize 1 --prefetch 1"
  "sleep 0-20 ms, 400 tasks|2|--workload sleep --tasks 400|"
  "sleep 0-20 ms, 400 tasks|3|--workload sleep --tasks 400|"
  "sleep 10 ms, 200 tasks (master CPU)|2|--workload sleep --tasks 200 --sleep-min-ms 10 --sleep-max-ms 10|"
  "payload 1 MiB|2|--workload payload --payload-mib 1 --tasks 200|"
  "payload 8 MiB|2|--workload payload --payload-mib 8 --tasks 40|"
  "payload 1 MiB as Bulk<f64>|2|--workload payload --payload-mib 1 --tasks 200|--bulk"
  "payload 8 MiB as Bulk<f64>|2|--workload payload --payload-mib 8 --tasks 40|--bulk"
  "noop 10M via map_unordered (master RSS)|2|--workload noop --tasks 10000000|--unordered"
)
for row in "${rows[@]}"; do
  IFS='|' read -r label ranks shared pool_only <<<"$row"
  for ((i = 0; i < repeats; i++)); do
    for system in pool raw; do
      extra=""
      [ "$system" = pool ] && extra="$pool_only"
      # shellcheck disable=SC2086
      timeout 600 mpirun -n "$ranks" "$bench" $shared $extra --system "$system" --tag "$label" >>"$out"
    done
  done
done

python3 - "$out" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
rows = {}
for r in runs:
    rows.setdefault((r["tag"], r["ranks"]), {}).setdefault(r["system"], []).append(r)
def med(rs, key):
    vals = [r[key] for r in rs if key in r]
    return statistics.median(vals) if vals else float("nan")
print("| workload | N | metric | pool (median) | raw (median) | pool / raw | paired |")
print("|---|---|---|---|---|---|---|")
for (tag, ranks), by in rows.items():
    pool, raw = by.get("pool", []), by.get("raw", [])
    if any("error" in r for r in pool + raw):
        print(f"| {tag} | {ranks} | ERROR: {[r.get('error') for r in pool + raw if 'error' in r][0]} | | | | |")
        continue
    if "payload" in tag:
        key, fmt = "mb_per_s", "{:,.0f} MB/s"
    elif "sleep" in tag:
        key, fmt = "efficiency", "{:.4f}"
    else:
        key, fmt = "tasks_per_s", "{:,.0f} tasks/s"
    p, q = med(pool, key), med(raw, key)
    # Each pool run and the raw run right after it saw the same machine: the median of
    # their ratios shrugs off the host's slow spells, which hit both systems alike.
    paired = statistics.median(a[key] / b[key] for a, b in zip(pool, raw))
    print(f"| {tag} | {ranks} | {key} | {fmt.format(p)} | {fmt.format(q)} | {p / q:.2f}x | {paired:.2f}x |")
    if "master CPU" in tag:
        share = lambda rs: statistics.median(r["master_cpu_s"] / r["seconds"] for r in rs)
        print(f"| {tag} | {ranks} | master CPU / wall | {share(pool):.1%} | {share(raw):.1%} | | |")
    if "RSS" in tag:
        print(f"| {tag} | {ranks} | master peak RSS | {med(pool, 'master_peak_rss_mb'):.1f} MB | {med(raw, 'master_peak_rss_mb'):.1f} MB | | |")
print(f"\n{len(runs)} runs, {min(len(v) for by in rows.values() for v in by.values())} per system and row.")
PY
