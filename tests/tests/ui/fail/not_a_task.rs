use pool_runtime::prelude::*;

fn square(x: u64) -> u64 {
    x * x
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    let _ = pool.map(square, [1, 2])?;
    let _ = pool.map(|x: u64| x + 1, [1, 2])?;
    let _ = pool.submit(square, 3);
    Ok(())
}
