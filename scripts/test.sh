#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs Open MPI if missing, then format and lint
# checks, rustdoc without warnings, unit/doc/UI/MPI integration tests, and every example under
# mpirun -n 1..4.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-mpi.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps --workspace --quiet
cargo test --workspace
scripts/run-examples.sh
