use pool_runtime::prelude::*;

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    // A task can be declared inside a function body, like any item.
    #[pool_task]
    fn local(x: u32) -> u32 {
        x + 100
    }

    assert_eq!(pool.map(local, [1])?, [101]);
    assert_eq!(local(2), 102);
    Ok(())
}
