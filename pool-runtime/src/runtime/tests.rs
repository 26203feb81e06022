//! Unit tests of the launcher.

use super::*;

#[test]
fn a_pool_inside_a_task_is_refused() {
    refuse_inside_task("not in a task: nothing happens");
    install_panic_hook();
    let mut input = Vec::new();
    crate::codec::encode_into(&1u8, &mut input).unwrap();
    let failure = crate::task::invoke::<u8, u8>(&input, &mut Vec::new(), |x| {
        refuse_inside_task("pool_runtime::local");
        Ok(x)
    })
    .expect_err("refused inside a task");
    let message = failure.message();
    assert!(
        matches!(failure, crate::error::TaskFailure::Panicked(_))
            && message.starts_with(
                "pool_runtime::local was called inside a pool task: a task can't start a \
                 pool (it runs on a worker, which belongs to a pool already); do the work \
                 in the task itself"
            )
            && message.contains("runtime/tests.rs:"),
        "{message}"
    );
}
