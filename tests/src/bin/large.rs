//! Values larger than one MPI message (MPI counts are `int`: 2 GiB) cross whole, as a task's
//! result and as its argument, in every mode: `large result|argument [GIB]`.
//!
//! Run by `tests/tests/large.rs`; each run needs about 4 times GIB of memory.

#![deny(warnings)]

use pool_runtime::prelude::*;

/// A value of `len` bytes of 7 with marks at its start, middle and end.
fn marked(len: usize) -> Vec<u8> {
    let mut data = vec![7u8; len];
    data[0] = 1;
    data[len / 2] = 2;
    data[len - 1] = 3;
    data
}

/// The marks and length of a value made by [`marked`], as a line to compare.
fn marks(data: &[u8]) -> String {
    let len = data.len();
    let sevens = [1, len / 3, len - 2].iter().all(|&i| data[i] == 7);
    format!(
        "len {len} marks {} {} {} sevens {sevens}",
        data[0],
        data[len / 2],
        data[len - 1]
    )
}

#[pool_task]
fn big_result(len: u64) -> Vec<u8> {
    marked(len as usize)
}

#[pool_task]
fn big_argument(data: Vec<u8>) -> String {
    marks(&data)
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let gib: f64 = args
        .get(1)
        .map_or(2.3, |g| g.parse().expect("GIB is a number"));
    let len = (gib * f64::from(1u32 << 30)) as usize;
    let expected = marks(&marked(len.min(1 << 20)))
        .replace(&format!("len {}", len.min(1 << 20)), &format!("len {len}"));
    match args.first().map(String::as_str) {
        Some("result") => {
            let out = pool.submit(big_result, len as u64).wait()?;
            assert_eq!(marks(&out), expected);
        }
        Some("argument") => {
            let data = marked(len);
            // By reference: the caller keeps its data, nothing is cloned.
            let out = pool.submit(big_argument, &data).wait()?;
            assert_eq!(out, expected);
        }
        other => panic!("usage: large result|argument [GIB], not {other:?}"),
    }
    println!(
        "large {} of {len} bytes passed with {} workers",
        args[0],
        pool.workers()
    );
    Ok(())
}
