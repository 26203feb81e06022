use pool_runtime::prelude::*;

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    let squares = pool.map(square, 0..10)?;
    println!("{squares:?}");
    Ok(())
}
