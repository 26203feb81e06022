use pool_runtime::prelude::*;

mod outer {
    pub mod inner {
        use pool_runtime::pool_task;

        #[pool_task]
        pub fn double(x: i64) -> i64 {
            x * 2
        }

        #[pool_task]
        pub(crate) fn triple(x: i64) -> i64 {
            x * 3
        }

        #[pool_task]
        pub(super) fn negate(x: i64) -> i64 {
            -x
        }
    }

    pub fn negate_all(pool: &pool_runtime::Pool, xs: Vec<i64>) -> Vec<i64> {
        pool.map(inner::negate, xs).unwrap()
    }
}

// A pub task at the crate root, used through a `use`.
#[pool_task]
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

use outer::inner::double;

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    assert_eq!(pool.map(double, [1, 2])?, [2, 4]);
    assert_eq!(pool.map(outer::inner::triple, [1, 2])?, [3, 6]);
    assert_eq!(outer::negate_all(pool, vec![1, 2]), [-1, -2]);
    assert_eq!(pool.map(crate::add, [(1, 2), (3, 4)])?, [3, 7]);
    assert_eq!(outer::inner::triple(5), 15);
    assert_eq!(
        <outer::inner::double as pool_runtime::Task>::NAME,
        concat!(module_path!(), "::outer::inner::double"),
    );
    Ok(())
}
