#!/usr/bin/env bash
# The payload table of BENCHMARKS.md (issue 14): Vec<f64> payloads of 1 MiB and 8 MiB at N=2
# and N=3, through pool (an owned clone per task, and --borrowed: the one array by
# reference), the raw loop (classic: a fresh vector per message; buffer: one send buffer and
# reused receive buffers; keep: as buffer, but every reply kept in memory of its own, as map
# keeps its results) and mpi4py.futures with pickle-5 (scripts/mpi4py_payload.py: the
# same array every time). Every repeat runs each system once, back to back, in one session;
# the table gives medians and paired ratios (the median of the ratios of runs of one repeat).
#   scripts/bench-payload.sh [REPEATS]   (default 5; raw JSON lines: target/bench-payload.jsonl)
# mpi4py is installed once into target/v (about 3 minutes; built against the system MPI):
#   python3 -m venv target/v && MPICC=mpicc target/v/bin/pip install --no-binary=mpi4py mpi4py numpy
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-mpi.sh
source scripts/mpi-env.sh
repeats=${1:-5}
cargo build --release --quiet -p examples --example bench
bench=target/release/examples/bench
python=target/v/bin/python
out=target/bench-payload.jsonl
: >"$out"

# label | bench arguments (pool and raw) | mpi4py arguments
sizes=(
  "1 MiB|--workload payload --payload-mib 1 --tasks 200|--payload-mib 1 --tasks 200"
  "8 MiB|--workload payload --payload-mib 8 --tasks 40|--payload-mib 8 --tasks 40"
)
for ranks in 2 3; do
  for size in "${sizes[@]}"; do
    IFS='|' read -r label args pyargs <<<"$size"
    for ((i = 0; i < repeats; i++)); do
      tag="$label|$ranks|$i"
      # shellcheck disable=SC2086
      {
        timeout 600 mpirun -n "$ranks" "$bench" $args --system pool --tag "pool owned|$tag"
        timeout 600 mpirun -n "$ranks" "$bench" $args --system pool --borrowed --tag "pool borrowed|$tag"
        timeout 600 mpirun -n "$ranks" "$bench" $args --system raw --tag "raw classic|$tag"
        timeout 600 mpirun -n "$ranks" "$bench" $args --system raw --raw-mode buffer --tag "raw buffer|$tag"
        timeout 600 mpirun -n "$ranks" "$bench" $args --system raw --raw-mode keep --tag "raw keep|$tag"
        timeout 600 mpirun -n "$ranks" -x MPI4PY_FUTURES_USE_PKL5=1 "$python" -m mpi4py.futures \
          scripts/mpi4py_payload.py $pyargs --tag "mpi4py pkl5|$tag"
      } >>"$out"
    done
  done
done

python3 - "$out" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {}
for r in runs:
    system, size, ranks, rep = r["tag"].split("|")
    by.setdefault((size, int(ranks)), {}).setdefault(system, {})[rep] = r
systems = ["pool owned", "pool borrowed", "raw classic", "raw buffer", "raw keep", "mpi4py pkl5"]
ratios = [("pool borrowed", "mpi4py pkl5"), ("pool borrowed", "raw buffer"),
          ("pool borrowed", "raw keep"), ("pool owned", "raw classic")]
errors = [r for r in runs if "error" in r]
for r in errors:
    print(f"ERROR in {r['tag']}: {r['error']}")
print("| payload | N | " + " | ".join(f"{s} (MB/s)" for s in systems) + " | "
      + " | ".join(f"{a} / {b}" for a, b in ratios) + " |")
print("|---|---|" + "---|" * (len(systems) + len(ratios)))
for (size, ranks), got in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    med = {s: statistics.median(r["mb_per_s"] for r in got.get(s, {}).values()) for s in systems}
    cells = [f"{med[s]:,.0f}" for s in systems]
    for a, b in ratios:
        paired = statistics.median(got[a][k]["mb_per_s"] / got[b][k]["mb_per_s"]
                                   for k in got[a] if k in got[b])
        cells.append(f"{med[a] / med[b]:.2f}x (paired {paired:.2f}x)")
    print(f"| {size} | {ranks} | " + " | ".join(cells) + " |")
print(f"\n{len(runs)} runs, {min(len(v) for g in by.values() for v in g.values())} per system and row.")
PY
