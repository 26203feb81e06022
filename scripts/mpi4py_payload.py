"""mpi4py.futures on the payload workload of shared/BENCH.md, for the table in BENCHMARKS.md.

Every task gets the same numpy array (float64, PAYLOAD_MIB MiB) and returns a copy of it, as
pool's `--borrowed` payload does; one JSON line like examples/bench's. Run by
scripts/bench-payload.sh:

    mpirun -n N -x MPI4PY_FUTURES_USE_PKL5=1 target/v/bin/python -m mpi4py.futures \
        scripts/mpi4py_payload.py --payload-mib 8 --tasks 40
"""
import argparse
import json
import os
import time

import numpy as np
from mpi4py.futures import MPIPoolExecutor


def echo(a):
    return a.copy()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--payload-mib", type=float, default=1.0)
    p.add_argument("--tasks", type=int, default=200)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--tag", default=None)
    args = p.parse_args()
    n = max(1, round(args.payload_mib * 1024 * 1024 / 8))
    data = np.arange(n, dtype=np.float64)
    with MPIPoolExecutor() as ex:
        workers = ex.num_workers
        warmup = args.warmup if args.warmup is not None else 2 * workers
        list(ex.map(echo, [data] * warmup))
        start = time.perf_counter()
        out = list(ex.map(echo, [data] * args.tasks))
        seconds = time.perf_counter() - start
    bad = [i for i, r in enumerate(out) if len(r) != n or r[-1] != n - 1]
    line = {
        "system": "mpi4py",
        "workload": "payload",
        "ranks": workers + 1,
        "workers": workers,
        "tasks": args.tasks,
        "seconds": seconds,
        "pkl5": os.environ.get("MPI4PY_FUTURES_USE_PKL5", "") not in ("", "0"),
        "payload_bytes": n * 8,
        "mb_per_s": 2 * n * 8 * args.tasks / seconds / 1e6,
    }
    if args.tag:
        line["tag"] = args.tag
    if bad:
        line["error"] = f"payload {bad[0]} wrong"
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
