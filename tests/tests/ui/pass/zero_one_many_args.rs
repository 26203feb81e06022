use pool_runtime::prelude::*;

#[pool_task]
fn zero() -> u32 {
    7
}

#[pool_task]
fn one(x: u64) -> u64 {
    x + 1
}

#[pool_task]
fn many(a: u8, b: String, c: Vec<f64>, d: (i32, i32)) -> String {
    format!("{a} {b} {} {}", c.len(), d.0 + d.1)
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    assert_eq!(pool.map(zero, [(), ()])?, [7, 7]);
    assert_eq!(pool.map(one, 0..3)?, [1, 2, 3]);
    let out = pool.map(many, [(1, "x".to_owned(), vec![1.0], (2, 3))])?;
    assert_eq!(out, ["1 x 1 5"]);
    assert_eq!(zero(), 7);
    assert_eq!(one(1), 2);
    Ok(())
}
