//! Runs the renamed-crate program as a single process (the pool runs in-process).

#[test]
fn renamed_crate_program_runs() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_renamed_main"))
        .env("POOL_THREADS", "2")
        .output()
        .expect("run renamed_main");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "renamed ok\n");
}
