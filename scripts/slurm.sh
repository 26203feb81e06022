#!/usr/bin/env bash
# A private single-node Slurm cluster for the tests (tests/tests/slurm.rs): munged,
# slurmctld and slurmd started by PID under a scratch directory, with their own ports, their
# own munge socket and key, and their own state; nothing under /etc is read or changed.
#
#   scripts/slurm.sh install             installs Debian's Slurm (slurmctld slurmd slurm-client
#                                        munge) with apt when missing (scripts/install-mpi.sh
#                                        --tests runs it)
#   scripts/slurm.sh start DIR [OWNER]   configures DIR (made if missing, must be empty),
#                                        starts the daemons, waits until the node is idle and
#                                        prints `SLURM_CONF=DIR/slurm.conf`: every srun, sbatch,
#                                        squeue, scancel wants that variable. With OWNER (a PID),
#                                        a watchdog stops everything once OWNER has exited;
#                                        in any case after POOL_SLURM_LIFETIME seconds (900)
#   scripts/slurm.sh stop DIR            ends the processes of jobs still running (SIGKILL),
#                                        stops the daemons (SIGTERM, by the PIDs kept in DIR)
#                                        and removes DIR unless POOL_SLURM_KEEP=1
#
# The one node, named `pool`, declares 16 CPUs (whatever the machine has): jobs of up to 16
# tasks run on a laptop. MpiDefault=pmix: Debian's Open MPI 4.1 has PMIx but not Slurm's PMI-2.
# The node's name is not the machine's: Open MPI's mpirun in a batch job takes it for another
# host and starts its ranks there through srun (a step running orted), as it does on all nodes
# of a real job but its first.
# Processes of the instance (daemons, slurmstepd, and jobs submitted with the same variable
# in their environment) carry POOL_SLURM_INSTANCE=DIR, which is how `stop` finds what is left.
#
# Needs root (slurmd runs jobs as their user, and the test suite runs as root); where it cannot
# run it prints a line starting with "SKIP:" and exits with 77.
set -euo pipefail

usage() {
  echo "usage: $0 install | start DIR [OWNER_PID] | stop DIR" >&2
  exit 2
}
skip() {
  echo "SKIP: $*" >&2
  exit 77
}
log() { echo "slurm.sh: $*" >&2; }
self=$(realpath "$0")
# Only the daemons get the mark (below), not this script and its helpers, whatever the caller has.
unset POOL_SLURM_INSTANCE

packages=(slurmctld slurmd slurm-client munge)
commands=(slurmctld slurmd srun sbatch squeue scancel sinfo scontrol munged munge unmunge setpriv)

install() {
  local missing=()
  command -v slurmctld >/dev/null 2>&1 || missing+=(slurmctld)
  command -v slurmd >/dev/null 2>&1 || missing+=(slurmd)
  command -v srun >/dev/null 2>&1 || missing+=(slurm-client)
  command -v munged >/dev/null 2>&1 || missing+=(munge)
  ((${#missing[@]})) || return 0
  echo "installing: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  # The packages' own services are not used (and, in containers, not started).
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null
}

# A TCP port nobody listens on, in 20000-29999.
free_port() {
  local port
  for _ in {1..50}; do
    port=$((20000 + RANDOM % 10000))
    if [ -z "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] && ! grep -qx "$port" "$dir/ports" 2>/dev/null; then
      echo "$port" >>"$dir/ports"
      echo "$port"
      return
    fi
  done
  log "no free TCP port found"
  exit 1
}

# PIDs of what is left of the instance: the processes whose environment holds
# POOL_SLURM_INSTANCE=$dir (slurmstepd, which slurmd starts with its own environment, and jobs
# submitted with it), and every process below them (the batch scripts and tasks of jobs); not
# the daemons named in $daemons nor what runs below them (slurmctld's slurmscriptd), nor this
# script and its own children.
ours() { { tr '\0' '\n' <"/proc/$1/environ" | grep -qxF "POOL_SLURM_INSTANCE=$dir"; } 2>/dev/null; }
instance_pids() {
  local environ pid marked=()
  for environ in /proc/[0-9]*/environ; do
    pid=${environ#/proc/}
    pid=${pid%/environ}
    if ours "$pid"; then marked+=("$pid"); fi
  done
  ((${#marked[@]})) || return 0
  ps -e -o pid=,ppid= | awk -v roots="${marked[*]}" -v daemons="${daemons[*]}" -v self=$$ '
    BEGIN {
      n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1
      n = split(daemons, d, " "); for (i = 1; i <= n; i++) skip[d[i]] = 1
      skip[self] = 1
    }
    { parent[$1] = $2 }
    END {
      do {
        changed = 0
        for (p in parent) {
          if (!(p in skip) && (parent[p] in skip)) { skip[p] = 1; changed = 1 }
          if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 }
        }
      } while (changed)
      for (p in keep) if ((p in parent) && !(p in skip)) print p
    }'
}

# Starts a daemon in its own session, its output in the log directory; records its PID.
daemon() {
  local name=$1
  shift
  setsid env POOL_SLURM_INSTANCE="$dir" SLURM_CONF="$dir/slurm.conf" "$@" \
    </dev/null >>"$dir/log/$name.out" 2>&1 &
  echo "$name $!" >>"$dir/pids"
}

# Waits up to $1 seconds for the command that follows to succeed.
await() {
  local limit=$1
  shift
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= end)); then return 1; fi
    sleep 0.1
  done
}

node_idle() { [ "$(timeout 5 sinfo -h -o %t 2>/dev/null)" = idle ]; }
munge_works() { munge -n -S "$dir/munge/socket" | unmunge -S "$dir/munge/socket"; }

fail_start() {
  log "$*"
  local f
  for f in "$dir"/log/*; do
    echo "--- $f" >&2
    tail -n 30 "$f" >&2
  done
  POOL_SLURM_KEEP=1 stop
  exit 1
}

start() {
  [ "$(id -u)" -eq 0 ] || skip "a private Slurm needs root (run as root, as CI does)"
  local tool
  for tool in "${commands[@]}"; do
    command -v "$tool" >/dev/null 2>&1 ||
      skip "$tool not found (scripts/install-mpi.sh --tests installs Slurm and munge)"
  done
  id munge >/dev/null 2>&1 || skip "no munge user (the munge package makes it)"
  mkdir -p "$dir"
  if [ -n "$(ls -A "$dir")" ]; then
    log "$dir is not empty"
    exit 2
  fi
  dir=$(cd "$dir" && pwd)
  # munged (as the munge user) must reach its directory inside.
  chmod 755 "$dir"
  mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/munge"
  chown munge:munge "$dir/munge"
  chmod 755 "$dir/munge" # munged wants its socket's directory searchable by all
  head -c 1024 /dev/urandom >"$dir/munge/key"
  chown munge:munge "$dir/munge/key"
  chmod 600 "$dir/munge/key"

  local host ctld_port slurmd_port
  host=$(hostname -s)
  ctld_port=$(free_port)
  slurmd_port=$(free_port)
  cat >"$dir/slurm.conf" <<EOF
# A private single-node cluster made by scripts/slurm.sh for the tests.
ClusterName=pooltest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=pmix
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=10
MinJobAge=600
MailProg=/bin/true
NodeName=pool NodeHostname=$host NodeAddr=127.0.0.1 CPUs=16 State=UNKNOWN
PartitionName=pool Nodes=pool Default=YES MaxTime=INFINITE State=UP
EOF
  # The PMIx plugin's files for the ranks, here rather than in /tmp.
  mkdir -p "$dir/pmix"
  echo "PMIxCliTmpDirBase=$dir/pmix" >"$dir/mpi.conf"

  daemon munged setpriv --reuid=munge --regid=munge --init-groups \
    munged --foreground --socket="$dir/munge/socket" --key-file="$dir/munge/key" \
    --pid-file="$dir/munge/pid" --log-file="$dir/munge/log" --seed-file="$dir/munge/seed"
  # The watchdog first: from here on, nothing outlives the owner.
  if [ -n "$owner" ]; then
    local lifetime=${POOL_SLURM_LIFETIME:-900}
    setsid bash -c '
      end=$((SECONDS + $3))
      while kill -0 "$2" 2>/dev/null && ((SECONDS < end)); do sleep 1; done
      exec "$0" stop "$1"' "$self" "$dir" "$owner" "$lifetime" \
      </dev/null >>"$dir/log/watchdog.out" 2>&1 &
    echo "watchdog $!" >>"$dir/pids"
  fi
  await 10 munge_works || fail_start "munged did not start"
  export SLURM_CONF=$dir/slurm.conf
  daemon slurmctld slurmctld -D -c -i -f "$dir/slurm.conf"
  daemon slurmd slurmd -D -N pool -f "$dir/slurm.conf"
  await 30 node_idle || fail_start "the node did not become idle within 30 s: $(timeout 5 sinfo -h -o '%t %E' 2>&1)"
  echo "SLURM_CONF=$dir/slurm.conf"
}

# True while process $1 runs (a zombie, not yet reaped by its parent, has ended).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# Sends $1 to the PIDs that follow, then waits up to $2 tenths of a second for them to end.
stop_pids() {
  local signal=$1 tenths=$2
  shift 2
  (($#)) || return 0
  kill "-$signal" "$@" 2>/dev/null || true
  for _ in $(seq "$tenths"); do
    local alive=()
    for pid in "$@"; do alive "$pid" && alive+=("$pid"); done
    ((${#alive[@]})) || return 0
    set -- "${alive[@]}"
    sleep 0.1
  done
  return 1
}

# Ends what is left of the jobs, after up to $1 tenths of a second for it to end by itself
# (slurmstepd of a step that has just ended tidies up for a few seconds).
end_jobs() {
  local left
  for _ in $(seq "$1"); do
    [ -n "$(instance_pids)" ] || return 0
    sleep 0.1
  done
  for _ in 1 2; do
    left=$(instance_pids)
    [ -n "$left" ] || break
    log "ending processes left by the instance: $(echo $left)"
    # shellcheck disable=SC2086 # one PID per word
    stop_pids KILL 50 $left || log "still running: $(echo $left)"
  done
}

stop() {
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  local name pid daemons=()
  if [ -f "$dir/pids" ]; then
    while read -r name pid; do
      case $name in
        # The watchdog itself runs `stop` when its owner has gone: it keeps its PID.
        watchdog) [ "$pid" = $$ ] || kill "$pid" 2>/dev/null || true ;;
        # A PID of a daemon that has ended may have been reused: only ours are signalled.
        *) if ours "$pid"; then daemons+=("$pid"); fi ;;
      esac
    done <"$dir/pids"
  fi
  # Jobs still running (normally none, but a test that failed may leave one): slurmstepd and
  # everything below it, and clients, after 5 s; then the daemons, which take about 2 s to end
  # on SIGTERM (SIGKILL after 10 s); then whatever a daemon started meanwhile.
  end_jobs 50
  stop_pids TERM 100 "${daemons[@]}" || stop_pids KILL 20 "${daemons[@]}" ||
    log "cannot stop PIDs ${daemons[*]}"
  end_jobs 0
  # Until their parent (init, once this script's start has exited) has reaped them, ended
  # daemons still show in `ps` as zombies: give it up to 3 s, so that they are gone on return.
  local zombies
  for _ in {1..30}; do
    zombies=0
    for pid in "${daemons[@]}"; do [ ! -e "/proc/$pid" ] || zombies=1; done
    ((zombies)) || break
    sleep 0.1
  done
  if [ "${POOL_SLURM_KEEP:-0}" != 1 ]; then rm -rf "$dir"; fi
}

case ${1:-} in
  install) install ;;
  start)
    (($# >= 2)) || usage
    dir=$2 owner=${3:-}
    start
    ;;
  stop)
    (($# == 2)) || usage
    dir=$2
    stop
    ;;
  *) usage ;;
esac
