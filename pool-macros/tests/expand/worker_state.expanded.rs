use pool_runtime::prelude::*;
struct Fft {
    size: usize,
}
///
/// Pool task `fn spectrum(fft: &mut Fft, samples: Vec<f64>, scale: f64) -> Vec<f64>`: call it as a function, or run it on a pool with `pool.map(spectrum, inputs)`.
#[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
struct spectrum;
const _: () = {
    #[allow(clippy::needless_pass_by_value)]
    fn __pool_task_fn(fft: &mut Fft, samples: Vec<f64>, scale: f64) -> Vec<f64> {
        samples.iter().take(fft.size).map(|x| x * scale).collect()
    }
    #[automatically_derived]
    impl ::core::ops::Deref for spectrum {
        type Target = fn(&mut Fft, Vec<f64>, f64) -> Vec<f64>;
        fn deref(&self) -> &Self::Target {
            const __POOL_FN: fn(&mut Fft, Vec<f64>, f64) -> Vec<f64> = __pool_task_fn;
            &__POOL_FN
        }
    }
    #[automatically_derived]
    impl ::pool_runtime::__private::Task for spectrum {
        type Args = (Vec<f64>, f64);
        type Output = Vec<f64>;
        const NAME: &'static ::core::primitive::str = ::core::concat!(
            ::core::module_path!(), "::spectrum"
        );
    }
    fn __pool_invoke(
        input: &[::core::primitive::u8],
        output: &mut ::pool_runtime::__private::Vec<::core::primitive::u8>,
    ) -> ::pool_runtime::__private::Result<(), ::pool_runtime::__private::TaskFailure> {
        ::pool_runtime::__private::invoke_task_with_state::<
            spectrum,
            Fft,
        >(
            input,
            output,
            |__pool_state, (__pool_arg0, __pool_arg1)| ::pool_runtime::__private::Result::Ok(
                __pool_task_fn(__pool_state, __pool_arg0, __pool_arg1),
            ),
        )
    }
    ::pool_runtime::__private::inventory::submit! {
        ::pool_runtime::__private::TaskEntry::new(< spectrum as
        ::pool_runtime::__private::Task > ::NAME, __pool_invoke)
    }
};
///
/// Pool task `fn size(fft: &Fft) -> usize`: call it as a function, or run it on a pool with `pool.map(size, inputs)`.
#[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
struct size;
const _: () = {
    #[allow(clippy::needless_pass_by_value)]
    fn __pool_task_fn(fft: &Fft) -> usize {
        fft.size
    }
    #[automatically_derived]
    impl ::core::ops::Deref for size {
        type Target = fn(&Fft) -> usize;
        fn deref(&self) -> &Self::Target {
            const __POOL_FN: fn(&Fft) -> usize = __pool_task_fn;
            &__POOL_FN
        }
    }
    #[automatically_derived]
    impl ::pool_runtime::__private::Task for size {
        type Args = ();
        type Output = usize;
        const NAME: &'static ::core::primitive::str = ::core::concat!(
            ::core::module_path!(), "::size"
        );
    }
    fn __pool_invoke(
        input: &[::core::primitive::u8],
        output: &mut ::pool_runtime::__private::Vec<::core::primitive::u8>,
    ) -> ::pool_runtime::__private::Result<(), ::pool_runtime::__private::TaskFailure> {
        ::pool_runtime::__private::invoke_task_with_state::<
            size,
            Fft,
        >(
            input,
            output,
            |__pool_state, ()| ::pool_runtime::__private::Result::Ok(
                __pool_task_fn(__pool_state),
            ),
        )
    }
    ::pool_runtime::__private::inventory::submit! {
        ::pool_runtime::__private::TaskEntry::new(< size as
        ::pool_runtime::__private::Task > ::NAME, __pool_invoke)
    }
};
