use pool_runtime::prelude::*;

/// Runs on every rank before the pool starts.
fn setup() {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
}

#[pool_main(init = setup, workers = 2)]
fn main(pool: &mut Pool) -> Result<(), Box<dyn std::error::Error>> {
    let squares = pool.map(square, 0..10)?;
    println!("{squares:?}");
    Ok(())
}
