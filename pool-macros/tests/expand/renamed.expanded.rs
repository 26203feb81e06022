///
/// Pool task `fn negate(x: i64) -> i64`: call it as a function, or run it on a pool with `pool.map(negate, inputs)`.
#[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
struct negate;
const _: () = {
    #[allow(clippy::needless_pass_by_value)]
    fn __pool_task_fn(x: i64) -> i64 {
        -x
    }
    #[automatically_derived]
    impl ::core::ops::Deref for negate {
        type Target = fn(i64) -> i64;
        fn deref(&self) -> &Self::Target {
            const __POOL_FN: fn(i64) -> i64 = __pool_task_fn;
            &__POOL_FN
        }
    }
    #[automatically_derived]
    impl ::my_pool::__private::Task for negate {
        type Args = i64;
        type Output = i64;
        const NAME: &'static ::core::primitive::str = ::core::concat!(
            ::core::module_path!(), "::negate"
        );
    }
    fn __pool_invoke(
        input: &[::core::primitive::u8],
        output: &mut ::my_pool::__private::Vec<::core::primitive::u8>,
    ) -> ::my_pool::__private::Result<(), ::my_pool::__private::TaskFailure> {
        ::my_pool::__private::invoke_task::<
            negate,
        >(
            input,
            output,
            |__pool_arg0| ::my_pool::__private::Result::Ok(__pool_task_fn(__pool_arg0)),
        )
    }
    ::my_pool::__private::inventory::submit! {
        ::my_pool::__private::TaskEntry::new(< negate as ::my_pool::__private::Task >
        ::NAME, __pool_invoke)
    }
};
fn main() {
    fn __pool_main(pool: &mut my_pool::Pool) {
        println!("{} workers", pool.workers());
    }
    ::my_pool::__private::run::<
        _,
        (),
    >(|__pool: &mut ::my_pool::__private::Pool| __pool_main(__pool))
}
