#!/usr/bin/env bash
# Runs an MPI program on several "hosts" made of Linux network namespaces on this machine,
# over TCP, as on a cluster: the launcher reads a hostfile and starts its daemons on the
# other hosts through an agent that enters their namespace instead of ssh. Open MPI's
# `mpirun` by default; MPICH's with POOL_TEST_MPIRUN=mpirun.mpich (and a program built
# against MPICH; MPICH 4.0.2 with UCX over TCP often hangs in MPI_Finalize, see README.md).
#
#   scripts/multihost.sh RANKS PROGRAM [ARGS...]
#
# POOL_NETNS_HOSTS hosts (default 3), ranks placed round-robin over them, so rank 0
# (the master) is on the first host and workers are on every host once RANKS > HOSTS.
# Every host gets its own network namespace and host name (a UTS namespace per process
# tree); one more namespace holds the bridge that joins them. The test addresses
# (10.213.0.0/24) exist only inside these namespaces: nothing here can reach or be reached
# from the machine's own network. Names are unique per run; everything is removed at the
# end, on failure and on SIGTERM/SIGINT. The run is killed after POOL_NETNS_TIMEOUT seconds
# (default 90).
#
# Needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN), iproute2 and util-linux. Where network
# namespaces cannot be made it prints a line starting with "SKIP:" and exits with 77.
set -euo pipefail

if (($# < 2)); then
  echo "usage: $0 RANKS PROGRAM [ARGS...]" >&2
  exit 2
fi
ranks=$1
shift
hosts=${POOL_NETNS_HOSTS:-3}
limit=${POOL_NETNS_TIMEOUT:-90}
net=10.213.0 # a /24 configured only inside the namespaces made here

skip() {
  echo "SKIP: $*" >&2
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root (run as root, as CI does)"
launcher=${POOL_TEST_MPIRUN:-mpirun}
for tool in ip unshare "$launcher"; do
  command -v "$tool" >/dev/null || skip "$tool not found (scripts/install-mpi.sh --tests installs it)"
done
case $("$launcher" --version 2>&1) in
  *"Open MPI"* | *OpenRTE*) mpi=openmpi ;;
  *HYDRA*) mpi=mpich ;;
  *)
    echo "multihost: $launcher is neither Open MPI's nor MPICH's (Hydra) launcher" >&2
    exit 2
    ;;
esac

id=poolnet-$$-$RANDOM
switch=$id-sw
tmp=$(mktemp -d "${TMPDIR:-/tmp}/$id.XXXX")
namespaces=()
launched=""

cleanup() {
  local status=$? ns
  trap - EXIT INT TERM
  if [ -n "$launched" ]; then
    # mpirun passes SIGTERM on to its daemons and ranks; give them a second.
    kill -TERM "$launched" 2>/dev/null || true
    for _ in {1..20}; do
      kill -0 "$launched" 2>/dev/null || break
      sleep 0.05
    done
  fi
  for ns in "${namespaces[@]}"; do
    # shellcheck disable=SC2046 # one pid per word
    kill -KILL $(ip netns pids "$ns" 2>/dev/null) 2>/dev/null || true
  done
  for ns in "${namespaces[@]}"; do
    ip netns delete "$ns" 2>/dev/null || true
  done
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

if ! err=$(ip netns add "$switch" 2>&1); then
  skip "cannot create a network namespace: $err"
fi
namespaces+=("$switch")
ip -n "$switch" link add br0 type bridge
ip -n "$switch" link set br0 up

host_names=() addresses=()
for ((i = 0; i < hosts; i++)); do
  ns=$id-h$i
  ip netns add "$ns"
  namespaces+=("$ns")
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
    2>/dev/null || true
  ip -n "$switch" link add "p$i" type veth peer name eth0 netns "$ns"
  ip -n "$switch" link set "p$i" master br0 up
  ip -n "$ns" addr add "$net.$((i + 1))/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  host_names+=("nshost$i")
  addresses+=("$net.$((i + 1))")
done

slots=$(((ranks + hosts - 1) / hosts))
for ((i = 0; i < hosts; i++)); do
  if [ "$mpi" = openmpi ]; then
    echo "${addresses[i]} slots=$slots"
  else
    echo "${addresses[i]}:1" # Hydra deals ranks out round-robin past the last line
  fi
done >"$tmp/hostfile"

# The agent the launcher calls instead of ssh: `agent [OPTIONS] HOST COMMAND...` runs COMMAND
# with a shell, as sshd would, in HOST's namespace under HOST's name.
{
  echo '#!/bin/sh'
  echo 'while [ "${1#-}" != "$1" ]; do shift; done'
  echo 'host=$1; shift'
  echo 'case $host in'
  for ((i = 0; i < hosts; i++)); do
    echo "  ${addresses[i]}) ns=$id-h$i name=${host_names[i]} ;;"
  done
  echo '  *) echo "multihost agent: unknown host $host" >&2; exit 255 ;;'
  echo 'esac'
  echo 'exec ip netns exec "$ns" unshare --uts sh -c '\''hostname "$0" && exec sh -c "$1"'\'' "$name" "$*"'
} >"$tmp/agent"
chmod +x "$tmp/agent"

# The launcher runs on the first host; its daemons on the others come through the agent.
# Only TCP between ranks (no shared memory, which would work across network namespaces),
# and only on the test network.
if [ "$mpi" = openmpi ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  launch=("$launcher" -n "$ranks" --hostfile "$tmp/hostfile" --map-by node
    --mca plm_rsh_agent "$tmp/agent" --mca plm_rsh_no_tree_spawn 1
    --mca pml ob1 --mca btl tcp,self
    --mca btl_tcp_if_include "$net.0/24" --mca oob_tcp_if_include "$net.0/24")
else
  # MPICH (ch4:ucx): UCX's TCP transport, and `self` for a rank's messages to itself.
  export UCX_TLS=tcp,self UCX_NET_DEVICES=eth0
  launch=("$launcher" -n "$ranks" -f "$tmp/hostfile"
    -launcher ssh -launcher-exec "$tmp/agent" -iface eth0)
fi
timeout -k 5 "$limit" ip netns exec "$id-h0" unshare --uts sh -c 'hostname "$0" && exec "$@"' \
  "${host_names[0]}" "${launch[@]}" "$@" &
launched=$!
status=0
wait "$launched" || status=$?
launched=""
if [ "$status" -eq 124 ]; then
  echo "multihost: the run did not finish within $limit s and was killed" >&2
fi
exit "$status"
