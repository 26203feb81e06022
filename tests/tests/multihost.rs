//! A pool across three "hosts" made of Linux network namespaces on this machine, Open MPI
//! over TCP between them, started from a hostfile with a launcher agent that enters a
//! namespace instead of ssh: `scripts/multihost.sh`. Skipped, with a SKIP line, where
//! namespaces cannot be made (not root); under CI (`CI=true`, as root) it must run.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{run, skip, skip_unless_open_mpi};

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
    if skip_unless_open_mpi(
        "a_pool_across_three_hosts_over_tcp",
        "scripts/multihost.sh starts Open MPI's daemons through its rsh launcher agent \
         (plm_rsh_agent) and selects Open MPI's TCP transport by its MCA parameters",
    ) {
        return;
    }
    let mut cmd = Command::new(SCRIPT);
    // 4 ranks round-robin over 3 hosts: the master and a worker on the first, a worker on
    // each other. Open MPI names the transport it picks for each peer.
    cmd.args(["4", SCENARIOS, "hosts"])
        .env("POOL_NETNS_HOSTS", "3")
        .env("OMPI_MCA_btl_base_verbose", "30");
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
    assert!(
        hosts.contains(master[0][0]) && master[0][1] != here.1,
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
    // Every worker on another host than the master's talks to it over TCP.
    let output = format!("{}{}", r.stdout, r.stderr);
    for host in hosts.iter().filter(|&&h| h != master[0][0]) {
        assert!(
            output.lines().any(|l| l.starts_with(&format!("[{host}:"))
                && l.contains("Using tcp btl for send to")
                && l.ends_with(&format!("on node {}", master[0][0]))),
            "no TCP from {host} to the master's host\n{}",
            r.describe()
        );
    }
}
