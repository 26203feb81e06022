//! `#[pool_main(init = path)]` runs the function first, once in a single process; `main` may
//! return a boxed error, so that `?` works on any error.
use std::sync::atomic::{AtomicUsize, Ordering};

use pool_runtime::prelude::*;

static SETUPS: AtomicUsize = AtomicUsize::new(0);

mod logging {
    pub(crate) fn setup() {
        super::SETUPS.fetch_add(1, super::Ordering::SeqCst);
    }
}

#[pool_task]
fn setups_seen_by_a_task() -> usize {
    SETUPS.load(Ordering::SeqCst)
}

#[pool_main(init = logging::setup)]
fn main(pool: &mut Pool) -> Result<(), Box<dyn std::error::Error>> {
    assert_eq!(SETUPS.load(Ordering::SeqCst), 1);
    assert_eq!(pool.submit(setups_seen_by_a_task, ()).wait()?, 1);
    let here = std::env::current_dir()?; // an io::Error would do with `?`
    assert!(here.is_absolute());
    Ok(())
}

/// An `init` function may fail, as `main` may.
#[allow(dead_code)]
mod fallible {
    use pool_runtime::prelude::*;

    fn setup() -> Result<(), std::io::Error> {
        std::env::current_dir().map(drop)
    }

    #[pool_main(init = setup)]
    fn main(_pool: &mut Pool) {}
}
