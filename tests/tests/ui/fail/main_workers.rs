use pool_runtime::prelude::*;

#[pool_main(workers)]
fn no_value(_pool: &mut Pool) {}

#[pool_main(workers = "4")]
fn string(_pool: &mut Pool) {}

#[pool_main(workers = 0)]
fn zero(_pool: &mut Pool) {}

#[pool_main(workers = -2)]
fn negative(_pool: &mut Pool) {}

#[pool_main(workers = 2.5)]
fn fraction(_pool: &mut Pool) {}

#[pool_main(workers = 4u8)]
fn suffix(_pool: &mut Pool) {}

#[pool_main(workers = 4294967296)]
fn too_many(_pool: &mut Pool) {}

#[pool_main(workers = 2, workers = 3)]
fn twice(_pool: &mut Pool) {}

#[pool_main(workers = 2)]
fn wrong_signature() {}

fn main() {}
