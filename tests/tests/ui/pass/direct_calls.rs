use pool_runtime::prelude::*;

#[pool_task]
fn square(x: u64) -> u64 {
    x * x
}

#[pool_task]
fn fib(n: u64) -> u64 {
    // Recursive calls go through the task's name, like any call.
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

#[pool_task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn apply(f: fn(u64) -> u64, x: u64) -> u64 {
    f(x)
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    assert_eq!(square(3), 9);
    assert_eq!(fib(10), 55);
    assert_eq!(add(2, 3), 5);

    // `*task` is the plain function pointer.
    let squares: Vec<u64> = (1..4).map(*square).collect();
    assert_eq!(squares, [1, 4, 9]);
    let f: fn(u64, u64) -> u64 = *add;
    assert_eq!(f(1, 1), 2);
    assert_eq!(apply(*fib, 7), 13);

    // The task value is `Copy`, so it can be used again after `pool.map`.
    let task = square;
    assert_eq!(pool.map(task, [2])?, [4]);
    assert_eq!(pool.map(task, [3])?, [9]);
    assert_eq!(pool.map(fib, 0..6)?, [0, 1, 1, 2, 3, 5]);
    assert_eq!(pool.submit(add, (4, 5)).wait()?, 9);
    assert_eq!(format!("{square:?}"), "square");
    Ok(())
}
