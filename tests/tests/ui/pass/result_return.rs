use std::fmt;
use std::io;

use pool_runtime::prelude::*;

#[pool_task]
fn parse(s: String) -> Result<u32, String> {
    s.parse().map_err(|e| format!("{s:?}: {e}"))
}

#[derive(Debug)]
struct TooBig(u64);

impl fmt::Display for TooBig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is too big", self.0)
    }
}

#[pool_task]
fn checked(x: u64) -> std::result::Result<u64, TooBig> {
    if x > 10 { Err(TooBig(x)) } else { Ok(x * 2) }
}

// An alias whose last segment is `Result` is fallible too.
#[pool_task]
fn read_len(path: String) -> io::Result<usize> {
    Ok(path.len())
}

// The success type can itself be a compound type.
#[pool_task]
fn split(s: String) -> Result<(String, Vec<String>), fmt::Error> {
    let mut words = s.split(' ').map(str::to_owned);
    let head = words.next().ok_or(fmt::Error)?;
    Ok((head, words.collect()))
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    // `Output` is the `T` of `Result<T, E>`.
    let values: Vec<u32> = pool.map(parse, ["1".to_owned(), "22".to_owned()])?;
    assert_eq!(values, [1, 22]);
    let err = pool.map(parse, ["x".to_owned()]).unwrap_err();
    assert!(err.to_string().contains("invalid digit"), "{err}");

    assert_eq!(pool.map(checked, [1, 2])?, [2, 4]);
    let err = pool.map(checked, [1, 11]).unwrap_err();
    assert!(err.to_string().contains("11 is too big"), "{err}");

    let lens: Vec<usize> = pool.map(read_len, ["ab".to_owned()])?;
    assert_eq!(lens, [2]);
    let parts = pool.map(split, ["a b c".to_owned()])?;
    assert_eq!(
        parts,
        [("a".to_owned(), vec!["b".to_owned(), "c".to_owned()])]
    );

    // Called directly, a task returns its declared type.
    assert!(checked(11).is_err());
    assert_eq!(read_len("abc".to_owned()).unwrap(), 3);
    Ok(())
}
