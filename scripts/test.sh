#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs Open MPI, MPICH, iproute2 and Slurm if missing,
# then format and lint checks, rustdoc without warnings, unit/doc/UI/MPI integration tests (as
# root, also the test across network namespaces and the tests under a private Slurm cluster),
# and every example under mpirun -n 1..4 and in spawn mode; then the MPI integration tests and
# the examples again against MPICH.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-mpi.sh --tests

step() { echo "--- $1 (at ${SECONDS} s)"; }
step "format, lints and docs"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The internals' docs too (a link that names nothing misleads the next reader), before the
# public docs, which then take their place in target/doc.
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps -p pool-runtime -p pool-macros --document-private-items --quiet
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps --workspace --quiet
# The tests under Slurm mostly wait (about 2 minutes, for a real time limit): their binary
# runs in the background, beside the other tests, the examples and the MPICH pass, and is
# waited for at the end. Run without cargo (which would hold the build directory's lock
# meanwhile), from the package's directory as cargo runs it.
step "tests"
cargo test --workspace --no-run --quiet
slurm_test=$(cargo test -p tests --test slurm --no-run 2>&1 |
  sed -n 's/.*Executable tests\/slurm.rs (\(.*\))$/\1/p')
(cd tests && exec "../$slurm_test") >target/slurm-tests.log 2>&1 &
slurm_pid=$!
# If a step below fails, the background tests end too (their cluster stops with them).
trap 'kill "$slurm_pid" 2>/dev/null || true' EXIT
slurm_tests=(srun_and_sbatch_give_what_mpirun_gives a_dead_worker_ends_an_srun_k_step_with_the_pools_report
  a_cancelled_job_submitted_again_with_its_journal_finishes
  a_batch_job_at_its_time_limit_keeps_what_finished_in_its_journal
  the_readme_shows_the_recipes_these_tests_run)
cargo test --workspace -- "${slurm_tests[@]/#/--skip=}"
step "examples"
scripts/run-examples.sh

# MPICH: built with its own compiler wrapper into its own target directory (mpi-sys does not
# rebuild when the MPI changes), run with its own launcher (tests/tests/common: launcher());
# the tests skip, each with its reason, what only Open MPI does. A new file of MPI tests in
# tests/tests/ joins the list here; slurm.rs does not (its cluster starts ranks with PMIx).
step "MPICH ($(mpirun.mpich --version | sed -n 's/^ *Version: *//p' | head -1))"
export MPICC=mpicc.mpich CARGO_TARGET_DIR=target/mpich POOL_TEST_MPIRUN=mpirun.mpich
cargo test -p tests --test mpi --test reliability --test multihost --test journal --test failures --test ergonomics --test beyond --test large --test timeouts --test drain
cargo test -p tests --test spawn mpich # spawn mode: refused with a clear error
scripts/run-examples.sh

step "the tests under Slurm (run in the background)"
status=0
wait "$slurm_pid" || status=$?
cat target/slurm-tests.log
step "done"
exit "$status"
