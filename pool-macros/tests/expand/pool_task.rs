use pool_runtime::prelude::*;

/// x², the smallest task.
#[pool_task]
pub fn square(x: u64) -> u64 {
    x * x
}

/// Several arguments travel as a tuple; a fallible task's `Err` becomes a task error.
#[pool_task(name = "app::divide")]
fn divide(a: u64, b: u64) -> Result<u64, String> {
    a.checked_div(b).ok_or_else(|| format!("{a} / 0"))
}

/// No argument, no result.
#[pool_task]
fn ping() {}
