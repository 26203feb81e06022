use pool_runtime::prelude::*;

#[pool_main]
fn main(_pool: &mut Pool) -> Result<(), String> {
    Ok(())
}
