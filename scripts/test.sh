#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs Open MPI, MPICH, iproute2 and Slurm if missing,
# then format and lint checks, rustdoc without warnings, unit/doc/UI/MPI integration tests (as
# root, also the test across network namespaces and the tests under a private Slurm cluster),
# and every example under mpirun -n 1..4 and in spawn mode; then the MPI integration tests and
# the examples again against MPICH.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-mpi.sh --tests

cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps --workspace --quiet
cargo test --workspace
scripts/run-examples.sh

# MPICH: built with its own compiler wrapper into its own target directory (mpi-sys does not
# rebuild when the MPI changes), run with its own launcher (tests/tests/common: launcher());
# the tests skip, each with its reason, what only Open MPI does. A new file of MPI tests in
# tests/tests/ joins the list here; slurm.rs does not (its cluster starts ranks with PMIx).
echo "--- MPICH ($(mpirun.mpich --version | sed -n 's/^ *Version: *//p' | head -1))"
export MPICC=mpicc.mpich CARGO_TARGET_DIR=target/mpich POOL_TEST_MPIRUN=mpirun.mpich
cargo test -p tests --test mpi --test reliability --test multihost --test journal --test failures --test ergonomics --test beyond --test large --test timeouts --test drain
cargo test -p tests --test spawn mpich # spawn mode: refused with a clear error
scripts/run-examples.sh
