#![allow(dead_code)]

use pool_runtime::prelude::*;

fn setup() {}

#[pool_main(init)]
fn no_value(_pool: &mut Pool) {}

#[pool_main(init = "setup")]
fn quoted(_pool: &mut Pool) {}

#[pool_main(init = setup())]
fn called(_pool: &mut Pool) {}

#[pool_main(init = || {})]
fn closure(_pool: &mut Pool) {}

#[pool_main(init = 42)]
fn literal(_pool: &mut Pool) {}

#[pool_main(init = setup, init = setup)]
fn twice(_pool: &mut Pool) {}

fn main() {}
