use pool_runtime::prelude::*;

#[derive(Debug)]
enum ParseError {
    Empty,
}

#[pool_task]
fn parse(s: String) -> Result<u32, ParseError> {
    s.parse().map_err(|_| ParseError::Empty)
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    let _ = pool.map(parse, ["1".to_owned()])?;
    Ok(())
}
