//! Names that the expansion must not pick up from the user's scope: it uses only absolute
//! `::pool_runtime::__private::...` and `::core::...` paths.
#![allow(dead_code, non_camel_case_types, clippy::all)]

use ::pool_runtime::prelude::*;

mod data {
    #[derive(::serde::Serialize, ::serde::Deserialize, PartialEq, Debug)]
    pub struct Point {
        pub x: i32,
        pub y: i32,
    }
}

use data::Point;

// Glob imports that bring in `Result`, `Error`, `Write` and friends.
#[allow(unused_imports)]
use ::std::fmt::*;
#[allow(unused_imports)]
use ::std::io::*;

// Local items named like the things generated code refers to.
type Result<T> = ::core::result::Result<T, ::std::string::String>;
struct Vec;
struct String;
struct Box;
struct Option;
struct Some;
struct None;
struct Ok;
struct Err;
struct Clone;
struct Copy;
struct Debug;
struct Send;
struct Sync;
struct Sized;
struct u8;
struct str;
struct usize;
struct bool;
trait Task {}
trait TaskResult {}
trait Deref {}
trait Serialize {}
trait DeserializeOwned {}
fn invoke() {}
fn assert_arg() {}
fn assert_output() {}
fn __pool_invoke() {}
fn __pool_task_fn() {}
mod core {}
mod std {}
mod inventory {}
mod serde {}
mod pool_runtime {}
mod __private {}
#[allow(unused_macros)]
macro_rules! concat {
    ($($t:tt)*) => {
        compile_error!("the user's `concat!` was used")
    };
}
#[allow(unused_macros)]
macro_rules! stringify {
    ($($t:tt)*) => {
        compile_error!("the user's `stringify!` was used")
    };
}
#[allow(unused_macros)]
macro_rules! module_path {
    ($($t:tt)*) => {
        compile_error!("the user's `module_path!` was used")
    };
}

#[pool_task]
fn shift(p: Point, by: i32) -> Point {
    Point {
        x: p.x + by,
        y: p.y + by,
    }
}

// `Result` here is the user's alias, and is still recognised as fallible.
#[pool_task]
fn halve(x: i32) -> Result<i32> {
    if x % 2 == 0 {
        Result::Ok(x / 2)
    } else {
        Result::Err(::std::format!("{x} is odd"))
    }
}

#[pool_task]
fn count(v: ::std::vec::Vec<::std::string::String>) -> ::core::primitive::usize {
    v.len()
}

#[pool_task(name = "shadowing::named")]
fn named() {}

#[pool_main]
fn main(pool: &mut Pool) -> Result<()> {
    let moved = pool
        .map(shift, [(Point { x: 1, y: 2 }, 1)])
        .map_err(|e| e.to_string())?;
    assert_eq!(moved, [Point { x: 2, y: 3 }]);
    let halves = pool.map(halve, [2, 4]).map_err(|e| e.to_string())?;
    assert_eq!(halves, [1, 2]);
    assert!(pool.map(halve, [3]).is_err());
    let n = pool
        .map(count, [::std::vec!["a".to_owned()]])
        .map_err(|e| e.to_string())?;
    assert_eq!(n, [1]);
    pool.submit(named, ()).wait().map_err(|e| e.to_string())?;
    Result::Ok(())
}
