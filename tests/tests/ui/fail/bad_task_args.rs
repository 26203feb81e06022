use pool_runtime::prelude::*;

#[pool_task(threads = 4)]
fn unknown_key(x: u32) -> u32 {
    x
}

#[pool_task(name = "a", name = "b")]
fn repeated_name(x: u32) -> u32 {
    x
}

#[pool_task(crate = "not a path!")]
fn bad_crate(x: u32) -> u32 {
    x
}

#[pool_task(name = "")]
fn empty_name(x: u32) -> u32 {
    x
}

#[pool_task(name = 5)]
fn not_a_string(x: u32) -> u32 {
    x
}

#[pool_task(name)]
fn missing_value(x: u32) -> u32 {
    x
}

#[pool_task(name = "a" crate = "::pool_runtime")]
fn missing_comma(x: u32) -> u32 {
    x
}

#[pool_task(crate = "::pool_runtime", crate = "pool_runtime")]
fn repeated_crate(x: u32) -> u32 {
    x
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    // The tasks are still tasks (with the default options), so these add no errors.
    let _ = pool.map(unknown_key, [1])?;
    let _ = pool.map(repeated_name, [1])?;
    let _ = pool.map(bad_crate, [1])?;
    let _ = pool.map(empty_name, [1])?;
    let _ = pool.map(not_a_string, [1])?;
    let _ = pool.map(missing_value, [1])?;
    let _ = pool.map(missing_comma, [1])?;
    let _ = pool.map(repeated_crate, [1])?;
    Ok(())
}
