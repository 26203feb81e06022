use pool_runtime::prelude::*;

#[pool_task]
fn show(x: impl std::fmt::Display) -> String {
    x.to_string()
}

#[pool_task]
fn numbers(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

fn main() {
    assert_eq!(show(1), "1");
    assert_eq!(numbers(2).count(), 2);
}
