use pool_runtime::prelude::*;

struct Model {
    scale: f64,
}

impl Model {
    #[pool_task]
    fn by_ref(&self, x: f64) -> f64 {
        x * self.scale
    }

    #[pool_task]
    fn by_value(self) -> f64 {
        self.scale
    }

    #[pool_task]
    fn typed(self: Box<Self>) -> f64 {
        self.scale
    }
}

fn main() {
    let m = Model { scale: 2.0 };
    assert_eq!(m.by_ref(1.0), 2.0);
    assert_eq!(Box::new(Model { scale: 1.0 }).typed(), 1.0);
    assert_eq!(m.by_value(), 2.0);
}
