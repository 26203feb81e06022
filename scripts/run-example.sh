#!/usr/bin/env bash
# Quick start: installs Open MPI if missing, builds the examples, and runs one under mpirun.
#   scripts/run-example.sh [EXAMPLE] [RANKS] [ARGS...]   (default: analyze_runs 4)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-mpi.sh
source scripts/mpi-env.sh
example=${1:-analyze_runs}
ranks=${2:-4}
shift $(( $# > 2 ? 2 : $# ))
cargo build --release --quiet -p examples --examples
set -x
mpirun -n "$ranks" "target/release/examples/$example" "$@"
