//! Several task types in one pool: zero, one and many arguments, a fallible task, a task in
//! another module, and the three ways to run them (`map`, `map_unordered`, `submit`); a setup
//! function that runs on every rank (`#[pool_main(init = setup)]`), so that the workers' log
//! lines show too.
//!
//! ```text
//! cargo run --release --example many_tasks
//! mpirun -n 3 target/release/examples/many_tasks
//! ```

use pool_runtime::prelude::*;

/// Runs in every process (master and workers) before the pool starts: the subscriber it
/// installs prints the warnings of this process, tasks included.
fn setup() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .init();
}

/// Counts the words of a text; warns (on the worker that runs it) about an empty one.
#[pool_task]
fn word_count(text: String) -> usize {
    if text.is_empty() {
        tracing::warn!(pid = std::process::id(), "word_count: an empty text");
    }
    text.split_whitespace().count()
}

/// Scales a series; several arguments travel as a tuple. Fails on an empty series.
#[pool_task]
fn scale(series: Vec<f64>, factor: f64) -> Result<Vec<f64>, String> {
    if series.is_empty() {
        return Err("empty series".to_owned());
    }
    Ok(series.iter().map(|x| x * factor).collect())
}

/// Reports which process ran it; no arguments.
#[pool_task]
fn whoami() -> u32 {
    std::process::id()
}

mod stats {
    use pool_runtime::pool_task;

    /// The mean of a series; a task in a nested module.
    #[pool_task]
    pub fn mean(series: Vec<f64>) -> f64 {
        series.iter().sum::<f64>() / series.len() as f64
    }
}

#[pool_main(init = setup)]
fn main(pool: &mut Pool) -> Result<(), Box<dyn std::error::Error>> {
    let texts = ["the quick brown fox", "jumps over", "the lazy dog", ""];
    let counts = pool.map(word_count, texts.iter().map(|t| t.to_string()))?;
    println!("word counts: {counts:?}");

    let series = [vec![1.0, 2.0], vec![], vec![3.0]];
    let inputs = series.iter().cloned().map(|s| (s, 10.0));
    let mut failures = 0;
    for (index, outcome) in pool.map_unordered(scale, inputs) {
        match outcome {
            Ok(scaled) => println!("series {index} scaled: {scaled:?}"),
            Err(e) => {
                failures += 1;
                println!("series {index} failed as expected: {e}");
            }
        }
    }
    assert_eq!(failures, 1);

    let means = pool.map(stats::mean, [vec![1.0, 3.0], vec![10.0]])?;
    println!("means: {means:?}");

    let handle = pool.submit(whoami, ());
    let other = pool.submit(stats::mean, vec![2.0, 4.0]);
    println!(
        "a worker with pid {} answered; mean {}",
        handle.wait()?,
        other.wait()?
    );
    println!(
        "called directly: word_count = {}",
        word_count("a b c".into())
    );
    Ok(())
}
