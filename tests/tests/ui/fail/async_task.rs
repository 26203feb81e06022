use pool_runtime::prelude::*;

#[pool_task]
async fn fetch(url: String) -> usize {
    url.len()
}

fn main() {
    // The function is still emitted, so this call adds no error.
    let _future = fetch("x".to_owned());
}
