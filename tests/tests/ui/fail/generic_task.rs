use pool_runtime::prelude::*;

#[pool_task]
fn type_param<T: Clone>(x: T) -> T {
    x.clone()
}

#[pool_task]
fn lifetime_param<'a>(x: u32) -> u32 {
    x
}

#[pool_task]
fn where_clause(x: u32) -> u32
where
    u32: Copy,
{
    x
}

#[pool_task]
fn const_param<const N: usize>(x: [u8; N]) -> usize {
    x.len()
}

fn main() {
    assert_eq!(type_param(1), 1);
    assert_eq!(lifetime_param(1), 1);
    assert_eq!(where_clause(1), 1);
    assert_eq!(const_param([1, 2]), 2);
}
