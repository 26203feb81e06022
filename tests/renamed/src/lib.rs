//! The runtime under another name: this crate depends on `pool-runtime` as `my_pool`, so
//! `::pool_runtime` does not exist here and the macros must use `crate = "..."`.

/// Doubles a number.
#[my_pool::pool_task(crate = "::my_pool")]
pub fn double(x: u64) -> u64 {
    2 * x
}

#[cfg(test)]
mod tests {
    use my_pool::Task;

    #[test]
    fn task_under_renamed_crate() {
        assert_eq!(super::double(21), 42);
        assert_eq!(<super::double as Task>::NAME, "renamed::double");
    }
}
