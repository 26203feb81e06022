use pool_runtime::prelude::*;

#[pool_task]
fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

#[pool_task]
fn mean(samples: &[f64]) -> f64 {
    samples.iter().sum::<f64>() / samples.len() as f64
}

#[pool_task]
fn bump(counter: &mut u64) {
    *counter += 1;
}

#[pool_task]
fn label(id: u32) -> &'static str {
    if id == 0 { "zero" } else { "other" }
}

#[pool_task]
fn nested(pair: (u32, &String), boxed: Box<u32>) -> u32 {
    pair.0 + pair.1.len() as u32 + *boxed
}

fn main() {
    assert_eq!(word_count("a b"), 2);
    assert_eq!(mean(&[1.0, 3.0]), 2.0);
    let mut n = 0;
    bump(&mut n);
    assert_eq!(label(0), "zero");
    assert_eq!(nested((1, &String::new()), Box::new(1)), 2);
}
