#!/usr/bin/env bash
# Installs what pool needs to build and run on Debian/Ubuntu, if it is missing:
# Open MPI (mpicc, mpirun, headers) and libclang (rsmpi generates its bindings with bindgen).
#   scripts/install-mpi.sh --tests   also what the test suite needs: MPICH (mpicc.mpich,
#                                    mpirun.mpich) beside Open MPI, iproute2 (`ip netns`), and
#                                    Slurm with munge (scripts/slurm.sh install)
set -euo pipefail

missing=()
command -v mpicc >/dev/null 2>&1 || missing+=(libopenmpi-dev)
command -v mpirun >/dev/null 2>&1 || missing+=(openmpi-bin)
if [ "${1:-}" = --tests ]; then
  # Debian ranks MPICH below Open MPI (alternatives priority 40 against 50), so `mpicc` and
  # `mpirun` stay Open MPI's; MPICH is used by its own names. Checked below.
  command -v mpicc.openmpi >/dev/null 2>&1 || missing+=(libopenmpi-dev)
  command -v mpirun.openmpi >/dev/null 2>&1 || missing+=(openmpi-bin)
  command -v mpicc.mpich >/dev/null 2>&1 || missing+=(libmpich-dev)
  command -v mpirun.mpich >/dev/null 2>&1 || missing+=(mpich)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
fi
# bindgen loads libclang.so or libclang-N.so (libclang-cpp, which other packages bring, is not it).
compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null || compgen -G '/usr/lib/*/libclang-[0-9]*.so*' >/dev/null \
  || missing+=(libclang-dev)

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Slurm's daemons for tests/tests/slurm.rs, which starts a private cluster of its own.
if [ "${1:-}" = --tests ]; then "$(dirname "$0")/slurm.sh" install; fi

if [ "${1:-}" = --tests ] && [[ "$(mpirun --version 2>&1)" != *"Open MPI"* ]]; then
  echo "error: mpirun is not Open MPI's (the tests want Open MPI as the default MPI, and" \
    "MPICH by its own names); see update-alternatives --display mpirun" >&2
  exit 1
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust 1.85 or newer from https://rustup.rs" >&2
  exit 1
fi
