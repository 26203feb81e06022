//! Values larger than one MPI message (MPI counts are `int`: 2 GiB) cross whole, as a task's
//! result and as its argument, in every mode: `large result|argument [GIB]`; and large
//! results, several to a chunk, sent from their own memory: `large mixed`.
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

/// A tuple is not one plain value: it crosses in the frame, beside those that do not.
#[pool_task]
fn mixed(i: u64) -> (Vec<f64>, String, Bulk<u16>, u64) {
    let n = 10_000 + i as usize * 1_000;
    let floats = (0..n).map(|k| (k as f64) * 0.5 + i as f64).collect();
    let text = format!("{i}:").repeat(n / 2);
    let shorts = Bulk((0..n).map(|k| (k as u16) ^ (i as u16)).collect());
    (floats, text, shorts, i)
}

#[pool_task]
fn many_floats(i: u64) -> Vec<f64> {
    (0..20_000 + i as usize)
        .map(|k| k as f64 + i as f64)
        .collect()
}

/// Results of one size (512 KiB), each different: the MPI master receives results of a size
/// that repeats into memory prepared ahead of time.
#[pool_task]
fn same_size_floats(i: u64) -> Vec<f64> {
    (0..1u64 << 16).map(|k| (k ^ i) as f64).collect()
}

/// Results of the same byte length as `same_size_floats`', of another element type.
#[pool_task]
fn same_size_text(i: u64) -> String {
    char::from(b'a' + (i % 26) as u8)
        .to_string()
        .repeat(1 << 19)
}

#[pool_task]
fn long_text(i: u64) -> String {
    format!("{i};").repeat(30_000)
}

/// Every fifth result is small, so chunks mix results sent from their own memory with
/// results copied into the frame.
#[pool_task]
fn many_shorts(i: u64) -> Bulk<u16> {
    let n = if i % 5 == 0 { 3 } else { 40_000 };
    Bulk((0..n).map(|k| (k as u16) ^ (i as u16)).collect())
}

/// Adds two large vectors element by element: the combining task of a fold whose running
/// value is large (kept whole on the worker, not sent from its own memory).
#[pool_task]
fn add_floats(a: Vec<f64>, b: Vec<f64>) -> Vec<f64> {
    a.iter().zip(&b).map(|(x, y)| x + y).collect()
}

/// A large borrowed argument, sent from the caller's memory by `map`, back as a result
/// (both out of band): each element plus one.
#[pool_task]
fn plus_one(data: Vec<f64>) -> Vec<f64> {
    data.iter().map(|x| x + 1.0).collect()
}

#[pool_task]
fn floats_len(data: Vec<f64>) -> u64 {
    data.len() as u64
}

#[pool_task]
fn text_len(text: String) -> u64 {
    text.len() as u64
}

#[pool_task]
fn shorts_sum(data: Bulk<u16>) -> u64 {
    data.iter().map(|&x| u64::from(x)).sum()
}

/// A result whose decoding on the master panics for the value 3 (its `Deserialize`).
#[derive(serde::Serialize)]
struct Boom(u64);

impl<'de> serde::Deserialize<'de> for Boom {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Boom, D::Error> {
        let v = u64::deserialize(d)?;
        assert!(v != 3, "boom while decoding result 3");
        Ok(Boom(v))
    }
}

#[pool_task]
fn boom(data: Vec<f64>) -> Boom {
    Boom(data[0] as u64)
}

#[pool_task]
fn ones(i: u64) -> Vec<f64> {
    vec![1.0 + (i % 2) as f64; 20_000]
}

/// Large results in chunks of several items: vectors, strings and `Bulk`s sent from their
/// own memory, several to a frame, and small values between them.
fn mixed_results(pool: &Pool) -> Result<(), Error> {
    let options = Options::new().chunksize(4);
    let inputs: Vec<u64> = (0..24).collect();
    for (i, out) in (0..).zip(pool.map_with(many_floats, &inputs, options.clone())?) {
        assert_eq!(out.len(), 20_000 + i as usize);
        assert_eq!(out[7], 7.0 + i as f64);
    }
    // One size again and again, then the same bytes as text, one item a chunk.
    let one = Options::new().chunksize(1);
    let many: Vec<u64> = (0..48).collect();
    for (i, out) in (0..).zip(pool.map_with(same_size_floats, &many, one.clone())?) {
        let right = (0..).zip(&out).all(|(k, &x)| x == (k ^ i) as f64);
        assert!(out.len() == 1 << 16 && right, "result {i}");
    }
    for (i, out) in (0..).zip(pool.map_with(same_size_text, &many, one)?) {
        assert_eq!(out, same_size_text(i), "result {i}");
    }
    for (i, out) in (0..).zip(pool.map_with(long_text, &inputs, options.clone())?) {
        assert_eq!(out, format!("{i};").repeat(30_000));
    }
    for (i, out) in (0..).zip(pool.map_with(many_shorts, &inputs, options.clone())?) {
        let n = if i % 5 == 0 { 3 } else { 40_000 };
        assert_eq!(out.len(), n);
        assert_eq!(out[n - 1], ((n - 1) as u16) ^ (i as u16));
    }
    for (i, (f, t, b, j)) in (0..).zip(pool.map_with(mixed, &inputs, options)?) {
        let n = 10_000 + i as usize * 1_000;
        assert_eq!(
            (f.len(), f[n - 1], j),
            (n, (n - 1) as f64 * 0.5 + i as f64, i)
        );
        assert_eq!(t.len(), format!("{i}:").len() * (n / 2));
        assert_eq!(b[n - 1], ((n - 1) as u16) ^ (i as u16));
    }
    borrowed_inputs(pool)?;
    chunks_of_large_inputs(pool)?;
    results_into_sent_inputs(pool)?;
    // A fold whose values are large: 100 vectors of 20,000 ones or twos.
    let sum = pool.fold(ones, 0..100u64, add_floats)?.expect("100 values");
    assert_eq!((sum.len(), sum[0], sum[19_999]), (20_000, 150.0, 150.0));
    Ok(())
}

/// Large borrowed inputs through `map`, sent from the caller's memory (several to a chunk,
/// every fifth one small, so copied into the frame), and owned ones through `map_unordered`,
/// moved into their frames; then through a journal, whose rerun reuses every outcome (their
/// inputs' digests and their records are whole).
fn borrowed_inputs(pool: &Pool) -> Result<(), Error> {
    let options = Options::new().chunksize(4);
    let n = |i: usize| if i % 5 == 0 { 3 } else { 9_000 + 100 * i };
    let vectors: Vec<Vec<f64>> = (0..24)
        .map(|i| (0..n(i)).map(|k| (k + i) as f64).collect())
        .collect();
    let check = |out: &[Vec<f64>]| {
        for (i, v) in out.iter().enumerate() {
            assert_eq!((v.len(), v[n(i) - 1]), (n(i), (n(i) + i) as f64));
        }
    };
    check(&pool.map_with(plus_one, &vectors, options.clone())?);
    // Owned, through a stream: each input moves into its frame and is sent from there.
    let mut owned: Vec<(usize, Vec<f64>)> = pool
        .map_unordered(plus_one, vectors.clone())
        .map(|(i, out)| (i, out.expect("plus_one succeeds")))
        .collect();
    owned.sort_by_key(|&(i, _)| i);
    check(&owned.into_iter().map(|(_, v)| v).collect::<Vec<_>>());
    let texts: Vec<String> = (0..24).map(|i| "t".repeat(n(i) * 8)).collect();
    let lens = pool.map_with(text_len, &texts, options.clone())?;
    assert!(
        lens.iter()
            .enumerate()
            .all(|(i, &l)| l == (n(i) * 8) as u64)
    );
    let shorts: Vec<Bulk<u16>> = (0..24)
        .map(|i| Bulk((0..n(i) * 4).map(|k| k as u16).collect()))
        .collect();
    let sums = pool.map_with(shorts_sum, &shorts, options.clone())?;
    for (i, s) in sums.iter().enumerate() {
        let expected: u64 = (0..n(i) * 4).map(|k| u64::from(k as u16)).sum();
        assert_eq!(*s, expected);
    }
    // A map that lends its inputs and panics while decoding a result, with chunks still in
    // flight: the panic leaves the call only once no send reads the caller's memory, and the
    // pool goes on.
    let lent = vectors.clone();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.map_with(boom, &lent, options.clone())
    }));
    assert!(caught.is_err(), "decoding result 3 panics");
    // Freed at once: nothing reads it any more.
    drop(lent);
    check(&pool.map_with(plus_one, &vectors, options.clone())?);
    let journal = std::env::temp_dir().join(format!("pool-large-{}.journal", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    let journaled = options.journal(&journal);
    check(&pool.map_with(plus_one, &vectors, journaled.clone())?);
    let before = pool.stats().replies;
    check(&pool.map_with(plus_one, &vectors, journaled)?);
    assert_eq!(
        pool.stats().replies,
        before,
        "the rerun reuses every outcome"
    );
    std::fs::remove_file(&journal).expect("the journal was written");
    Ok(())
}

/// Adaptive chunks of inputs of 1 MiB hold one each (a chunk stops growing at 1 MiB: more
/// saves nothing and keeps more memory alive); a chunk size the caller sets is kept.
fn chunks_of_large_inputs(pool: &Pool) -> Result<(), Error> {
    let inputs = vec![vec![0.5f64; 1 << 17]; 64];
    for (options, chunks) in [(Options::new(), 64), (Options::new().chunksize(4), 16)] {
        let before = pool.stats();
        let lens = pool.map_with(floats_len, &inputs, options)?;
        assert_eq!(lens, vec![1 << 17; 64]);
        assert_eq!(pool.stats().since(&before).chunks, chunks);
    }
    Ok(())
}

/// Owned inputs the size of their results: under MPI, once an input is sent, its memory
/// takes a later result. Every result is its own input plus one, none another's.
fn results_into_sent_inputs(pool: &Pool) -> Result<(), Error> {
    let item = |i: usize| -> Vec<f64> { (0..1 << 16).map(|k| (i * 100_000 + k) as f64).collect() };
    for options in [Options::new(), Options::new().chunksize(2).prefetch(3)] {
        let out = pool.map_with(plus_one, (0..48).map(item), options)?;
        for (i, v) in out.iter().enumerate() {
            let right = (0..)
                .zip(v)
                .all(|(k, &x)| x == (i * 100_000 + k) as f64 + 1.0);
            assert!(v.len() == 1 << 16 && right, "result {i}");
        }
    }
    Ok(())
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
        Some("mixed") => {
            mixed_results(pool)?;
            println!("large mixed passed with {} workers", pool.workers());
            return Ok(());
        }
        Some("result") => {
            let out = pool.submit(big_result, len as u64).wait()?;
            assert_eq!(marks(&out), expected);
        }
        Some("argument") => {
            let data = marked(len);
            // By reference: the caller keeps its data, nothing is cloned; `submit` copies it
            // into its frame, `map` sends it from the caller's memory.
            let out = pool.submit(big_argument, &data).wait()?;
            assert_eq!(out, expected);
            let out = pool.map(big_argument, [&data])?;
            assert_eq!(out, std::slice::from_ref(&expected));
        }
        other => panic!("usage: large mixed|result|argument [GIB], not {other:?}"),
    }
    println!(
        "large {} of {len} bytes passed with {} workers",
        args[0],
        pool.workers()
    );
    Ok(())
}
