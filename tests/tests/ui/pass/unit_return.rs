use pool_runtime::prelude::*;

#[pool_task]
fn log(line: String) {
    assert!(!line.is_empty());
}

#[pool_task]
#[allow(clippy::unused_unit)]
fn explicit_unit(x: u8) -> () {
    assert!(x < 10);
}

#[pool_task]
fn nothing() {}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    let units: Vec<()> = pool.map(log, ["a".to_owned(), "b".to_owned()])?;
    assert_eq!(units.len(), 2);
    assert_eq!(pool.map(explicit_unit, 0..3)?.len(), 3);
    pool.submit(nothing, ()).wait()?;
    log("c".to_owned());
    nothing();
    Ok(())
}
