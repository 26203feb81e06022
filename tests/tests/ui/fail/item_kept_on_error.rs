//! When `#[pool_task]` reports an error in the signature, the function is still emitted, so
//! its callers add no "cannot find function" errors.
use pool_runtime::prelude::*;

#[pool_task]
fn borrowed(s: &str) -> usize {
    s.len()
}

#[pool_task]
fn generic<T: ToString>(x: T) -> String {
    x.to_string()
}

mod inner {
    use pool_runtime::pool_task;

    #[pool_task]
    pub async fn later(x: u32) -> u32 {
        x
    }
}

// Only running it on a pool fails: the function is not a task until its errors are fixed.
fn on_pool(pool: &Pool) {
    let _ = pool.map(borrowed, ["a"]);
}

fn main() {
    assert_eq!(borrowed("ab"), 2);
    assert_eq!(generic(1), "1");
    let _future = inner::later(1);
}
