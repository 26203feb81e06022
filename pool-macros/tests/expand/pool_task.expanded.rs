use pool_runtime::prelude::*;
/// x², the smallest task.
///
/// Pool task `fn square(x: u64) -> u64`: call it as a function, or run it on a pool with `pool.map(square, inputs)`.
#[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
pub struct square;
const _: () = {
    #[allow(clippy::needless_pass_by_value)]
    fn __pool_task_fn(x: u64) -> u64 {
        x * x
    }
    #[automatically_derived]
    impl ::core::ops::Deref for square {
        type Target = fn(u64) -> u64;
        fn deref(&self) -> &Self::Target {
            const __POOL_FN: fn(u64) -> u64 = __pool_task_fn;
            &__POOL_FN
        }
    }
    #[automatically_derived]
    impl ::pool_runtime::__private::Task for square {
        type Args = u64;
        type Output = u64;
        const NAME: &'static ::core::primitive::str = ::core::concat!(
            ::core::module_path!(), "::square"
        );
    }
    fn __pool_invoke(
        input: &[::core::primitive::u8],
        output: &mut ::pool_runtime::__private::Vec<::core::primitive::u8>,
    ) -> ::pool_runtime::__private::Result<(), ::pool_runtime::__private::TaskFailure> {
        ::pool_runtime::__private::invoke_task::<
            square,
        >(
            input,
            output,
            |__pool_arg0| ::pool_runtime::__private::Result::Ok(
                __pool_task_fn(__pool_arg0),
            ),
        )
    }
    ::pool_runtime::__private::inventory::submit! {
        ::pool_runtime::__private::TaskEntry::new(< square as
        ::pool_runtime::__private::Task > ::NAME, __pool_invoke)
    }
};
/// Several arguments travel as a tuple; a fallible task's `Err` becomes a task error.
///
/// Pool task `fn divide(a: u64, b: u64) -> Result<u64, String>`: call it as a function, or run it on a pool with `pool.map(divide, inputs)`.
#[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
struct divide;
const _: () = {
    #[allow(clippy::needless_pass_by_value)]
    fn __pool_task_fn(a: u64, b: u64) -> Result<u64, String> {
        a.checked_div(b).ok_or_else(|| format!("{a} / 0"))
    }
    #[automatically_derived]
    impl ::core::ops::Deref for divide {
        type Target = fn(u64, u64) -> Result<u64, String>;
        fn deref(&self) -> &Self::Target {
            const __POOL_FN: fn(u64, u64) -> Result<u64, String> = __pool_task_fn;
            &__POOL_FN
        }
    }
    #[automatically_derived]
    impl ::pool_runtime::__private::Task for divide {
        type Args = (u64, u64);
        type Output = u64;
        const NAME: &'static ::core::primitive::str = "app::divide";
    }
    fn __pool_invoke(
        input: &[::core::primitive::u8],
        output: &mut ::pool_runtime::__private::Vec<::core::primitive::u8>,
    ) -> ::pool_runtime::__private::Result<(), ::pool_runtime::__private::TaskFailure> {
        ::pool_runtime::__private::invoke_task::<
            divide,
        >(
            input,
            output,
            |(__pool_arg0, __pool_arg1)| {
                let __pool_value = __pool_task_fn(__pool_arg0, __pool_arg1);
                let __pool_causes = {
                    use ::pool_runtime::__private::CauseChain as _;
                    (&&::pool_runtime::__private::Causes(&__pool_value)).causes()
                };
                ::pool_runtime::__private::into_task_result::<
                    Result<u64, String>,
                >(__pool_value, __pool_causes)
            },
        )
    }
    ::pool_runtime::__private::inventory::submit! {
        ::pool_runtime::__private::TaskEntry::new(< divide as
        ::pool_runtime::__private::Task > ::NAME, __pool_invoke)
    }
};
/// No argument, no result.
///
/// Pool task `fn ping()`: call it as a function, or run it on a pool with `pool.map(ping, inputs)`.
#[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
struct ping;
const _: () = {
    #[allow(clippy::needless_pass_by_value)]
    fn __pool_task_fn() {}
    #[automatically_derived]
    impl ::core::ops::Deref for ping {
        type Target = fn();
        fn deref(&self) -> &Self::Target {
            const __POOL_FN: fn() = __pool_task_fn;
            &__POOL_FN
        }
    }
    #[automatically_derived]
    impl ::pool_runtime::__private::Task for ping {
        type Args = ();
        type Output = ();
        const NAME: &'static ::core::primitive::str = ::core::concat!(
            ::core::module_path!(), "::ping"
        );
    }
    fn __pool_invoke(
        input: &[::core::primitive::u8],
        output: &mut ::pool_runtime::__private::Vec<::core::primitive::u8>,
    ) -> ::pool_runtime::__private::Result<(), ::pool_runtime::__private::TaskFailure> {
        ::pool_runtime::__private::invoke_task::<
            ping,
        >(input, output, |()| ::pool_runtime::__private::Result::Ok(__pool_task_fn()))
    }
    ::pool_runtime::__private::inventory::submit! {
        ::pool_runtime::__private::TaskEntry::new(< ping as
        ::pool_runtime::__private::Task > ::NAME, __pool_invoke)
    }
};
