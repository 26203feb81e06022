//! A pool across three "hosts" made of Linux network namespaces on this machine, Open MPI
//! over TCP between them, started from a hostfile with a launcher agent that enters a
//! namespace instead of ssh: `scripts/multihost.sh`. Skipped, with a SKIP line, where
//! namespaces cannot be made (not root); under CI (`CI=true`, as root) it must run. Under
//! MPICH (`POOL_TEST_MPIRUN=mpirun.mpich`: Hydra with the same agent, UCX's TCP transport)
//! only with `POOL_TEST_MPICH_TCP=1`, for the reason in the test.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{Mpi, launcher, mpi, run, skip};

const SCENARIOS: &str = env!("CARGO_BIN_EXE_scenarios");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/multihost.sh");

/// The words after `prefix` on every line of `text` that starts with it.
fn lines_after<'a>(text: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(|rest| rest.split_whitespace().collect())
        .collect()
}

#[test]
fn a_pool_across_three_hosts_over_tcp() {
    if mpi() == Mpi::Mpich && std::env::var_os("POOL_TEST_MPICH_TCP").is_none() {
        skip(
            "a_pool_across_three_hosts_over_tcp under MPICH: MPICH 4.0.2 (ch4:ucx) with UCX \
             1.13 limited to TCP hangs in MPI_Finalize in most runs here, a 10-line C program \
             as well (rank 0 stays in UCX progress inside MPI_Finalize while the others wait \
             in the PMI barrier); the pool's run itself passes. POOL_TEST_MPICH_TCP=1 runs it \
             anyway",
        );
        return;
    }
    let mut cmd = Command::new(SCRIPT);
    // 4 ranks round-robin over 3 hosts: the master and a worker on the first, a worker on
    // each other. Each MPI names the transport it picks for its peers.
    cmd.args(["4", SCENARIOS, "hosts"])
        .env("POOL_NETNS_HOSTS", "3")
        .env("POOL_TEST_MPIRUN", launcher());
    match mpi() {
        Mpi::OpenMpi => cmd.env("OMPI_MCA_btl_base_verbose", "30"),
        Mpi::Mpich => cmd.env("UCX_LOG_LEVEL", "info"),
    };
    let r = run(cmd);
    if r.status == Some(77) {
        let why = r.stderr.trim().trim_start_matches("SKIP: ");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the test across network namespaces, but: {why}\n{}",
            r.describe()
        );
        skip(&format!("a_pool_across_three_hosts_over_tcp: {why}"));
        return;
    }
    r.assert_success();
    assert!(
        r.stdout.contains("scenario hosts passed with 3 workers"),
        "{}",
        r.describe()
    );

    let here = tests::here();
    let workers = lines_after(&r.stdout, "worker at ");
    let hosts: BTreeSet<&str> = workers.iter().map(|w| w[0]).collect();
    let netns: BTreeSet<&str> = workers.iter().map(|w| w[1]).collect();
    assert!(
        hosts.len() >= 3 && netns.len() >= 3,
        "tasks ran on fewer than 3 hosts: {workers:?}\n{}",
        r.describe()
    );
    assert!(
        !netns.contains(here.1.as_str()),
        "a worker ran in the test's own network namespace {}\n{}",
        here.1,
        r.describe()
    );
    let master = lines_after(&r.stdout, "master at ");
    assert_eq!(master.len(), 1, "{}", r.describe());
    let master_host = master[0][0];
    assert!(
        hosts.contains(master_host) && master[0][1] != here.1,
        "{}",
        r.describe()
    );
    // Task errors carry the host MPI names (MPI_Get_processor_name): the namespaces' names.
    let named = lines_after(&r.stdout, "task errors name hosts: ");
    assert_eq!(named.len(), 1, "{}", r.describe());
    let named: BTreeSet<&str> = named[0].iter().copied().collect();
    assert!(
        !named.is_empty() && named.is_subset(&hosts),
        "task errors name {named:?}, tasks ran on {hosts:?}\n{}",
        r.describe()
    );
    // The ranks talk TCP, over the test network, to the other hosts.
    let output = format!("{}{}", r.stdout, r.stderr);
    for host in hosts.iter().filter(|&&h| h != master_host) {
        let from_host = |l: &&str| l.contains(&format!("[{host}:"));
        let tcp = match mpi() {
            // Open MPI's choice of transport per peer, here for a peer on the master's host.
            Mpi::OpenMpi => output.lines().filter(from_host).any(|l| {
                l.contains("Using tcp btl for send to")
                    && l.ends_with(&format!("on node {master_host}"))
            }),
            // UCX's transports per endpoint: TCP on the namespace's interface, and no
            // shared memory (posix, sysv, cma) anywhere.
            Mpi::Mpich => {
                output
                    .lines()
                    .filter(from_host)
                    .any(|l| l.contains("tag(tcp/eth0"))
                    && !["posix/", "sysv/", "cma/"]
                        .iter()
                        .any(|shm| output.contains(shm))
            }
        };
        assert!(
            tcp,
            "no TCP from {host} to the master's host\n{}",
            r.describe()
        );
    }
}
