use pool_runtime::Task;
use pool_runtime::prelude::*;

#[pool_task(name = "custom::name")]
fn renamed(x: u32) -> u32 {
    x + 1
}

#[pool_task(name = "custom::other")]
fn trailing_comma(x: u32) -> u32 {
    x + 2
}

#[pool_task(name = "custom::both", crate = "::pool_runtime")]
fn both(x: u32) -> u32 {
    x + 3
}

#[pool_task(crate = "pool_runtime", name = "custom::reversed")]
fn reversed(x: u32) -> u32 {
    x + 4
}

#[pool_task]
fn default_name() {}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    assert_eq!(renamed::NAME, "custom::name");
    assert_eq!(trailing_comma::NAME, "custom::other");
    assert_eq!(both::NAME, "custom::both");
    assert_eq!(reversed::NAME, "custom::reversed");
    assert_eq!(
        default_name::NAME,
        concat!(module_path!(), "::default_name")
    );
    assert_ne!(renamed::ID, trailing_comma::ID);
    assert_eq!(pool.map(renamed, [1])?, [2]);
    assert_eq!(pool.map(trailing_comma, [1])?, [3]);
    assert_eq!(pool.map(both, [1])?, [4]);
    assert_eq!(pool.map(reversed, [1])?, [5]);
    Ok(())
}
