use pool_runtime::prelude::*;

#[pool_task]
unsafe fn raw(x: u32) -> u32 {
    x
}

#[pool_task]
extern "C" fn foreign(x: u32) -> u32 {
    x
}

fn main() {
    assert_eq!(unsafe { raw(1) }, 1);
    assert_eq!(foreign(1), 1);
}
