use pool_runtime::prelude::*;

struct Model;

impl Model {
    // No `self`, but still inside an `impl`: a task must be a free function.
    #[pool_task]
    fn scale(x: f64) -> f64 {
        x * 2.0
    }
}

fn main() {
    assert_eq!(Model::scale(1.0), 2.0);
}
