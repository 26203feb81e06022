#!/usr/bin/env bash
# Before and after: the pool rows of scripts/bench.sh for the code at REV (built in a
# scratch worktree) and for this checkout, alternately, in one session; medians and ratios.
#   scripts/bench-compare.sh REV [REPEATS]   (default 5; raw JSON lines: target/bench-compare.jsonl)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-mpi.sh
source scripts/mpi-env.sh
rev=${1:?usage: scripts/bench-compare.sh REV [REPEATS]}
repeats=${2:-5}
base_src=target/bench-base-src
if [ ! -d "$base_src" ]; then git worktree add --detach "$base_src" "$rev" >/dev/null; fi
git -C "$base_src" checkout -q --detach "$rev"
(cd "$base_src" && CARGO_TARGET_DIR=../bench-base cargo build --release --quiet -p examples --example bench)
cargo build --release --quiet -p examples --example bench
before=target/bench-base/release/examples/bench
after=target/release/examples/bench
out=target/bench-compare.jsonl
: >"$out"

# row label | ranks | arguments
rows=(
  "noop, defaults|2|--workload noop --tasks 2000000"
  "noop, defaults|3|--workload noop --tasks 1000000"
  "noop, chunksize 1, prefetch 1|2|--workload noop --tasks 300000 --chunksize 1 --prefetch 1"
  "sleep 0-20 ms, 400 tasks|3|--workload sleep --tasks 400"
  "sleep 10 ms, 200 tasks (master CPU)|2|--workload sleep --tasks 200 --sleep-min-ms 10 --sleep-max-ms 10"
  "payload 8 MiB|2|--workload payload --payload-mib 8 --tasks 40"
  "noop 10M via map_unordered (master RSS)|2|--workload noop --tasks 10000000 --unordered"
)
for row in "${rows[@]}"; do
  IFS='|' read -r label ranks args <<<"$row"
  for ((i = 0; i < repeats; i++)); do
    for which in before after; do
      bin=$before
      [ "$which" = after ] && bin=$after
      # shellcheck disable=SC2086
      timeout 600 mpirun -n "$ranks" "$bin" $args --tag "$which|$label" >>"$out"
    done
  done
done

python3 - "$out" "$rev" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
rows = {}
for r in runs:
    which, tag = r["tag"].split("|", 1)
    rows.setdefault((tag, r["ranks"]), {}).setdefault(which, []).append(r)
print(f"| workload | N | metric | before ({sys.argv[2]}) | after | after / before | paired |")
print("|---|---|---|---|---|---|---|")
for (tag, ranks), by in rows.items():
    a, b = by.get("before", []), by.get("after", [])
    if any("error" in r for r in a + b):
        print(f"| {tag} | {ranks} | ERROR | | | | |")
        continue
    key = "mb_per_s" if "payload" in tag else "efficiency" if "sleep" in tag else "tasks_per_s"
    if "master CPU" in tag:
        key = "master_cpu_s"
    if "RSS" in tag:
        key = "master_peak_rss_mb"
    med = lambda rs: statistics.median(r[key] for r in rs)
    paired = statistics.median(y[key] / x[key] for x, y in zip(a, b))
    print(f"| {tag} | {ranks} | {key} | {med(a):,.4g} | {med(b):,.4g} | {med(b) / med(a):.3f} | {paired:.3f} |")
print(f"\n{len(runs)} runs, {min(len(v) for by in rows.values() for v in by.values())} per version and row.")
PY
