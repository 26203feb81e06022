# Sourced by the scripts: lets Open MPI's mpirun start as root (containers, CI) and start more
# ranks than there are cores. Only for these scripts; your own runs need neither on a cluster.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_rmaps_base_oversubscribe=1
