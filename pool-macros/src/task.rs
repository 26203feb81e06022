//! `#[pool_task]`: parse, validate, expand.
//!
//! ```ignore
//! #[pool_task] pub fn analyze(run: Run) -> Summary { body }
//! ```
//! becomes
//! ```ignore
//! pub struct analyze;                        // the name users pass to pool.map
//! const _: () = {
//!     fn __pool_task_fn(run: Run) -> Summary { body }
//!     impl Deref for analyze { type Target = fn(Run) -> Summary; ... }   // analyze(run) works
//!     impl Task for analyze { type Args = Run; type Output = Summary; const NAME = ...; }
//!     fn __pool_invoke(input: &[u8], output: &mut Vec<u8>) -> Result<(), TaskFailure> { ... }
//!     inventory::submit! { TaskEntry::new(NAME, __pool_invoke) }
//! };
//! ```

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

use crate::args::{TaskArgs, runtime_path};

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(e) => {
            let e = syn::Error::new(
                e.span(),
                format!("{e}; #[pool_task] goes on a function: `#[pool_task] fn name(arg: T) -> R {{ ... }}`"),
            );
            return with_error(item, e);
        }
    };
    let (args, args_error) = match syn::parse2::<TaskArgs>(args) {
        Ok(args) => (args, None),
        Err(e) => (TaskArgs::default(), Some(e)),
    };
    let mut errors = validate(&func).err();
    if let Some(e) = args_error {
        combine(&mut errors, e);
    }
    match errors {
        // Keep the user's function as it was so the rest of the crate still compiles.
        Some(e) => with_error(quote!(#func), e),
        None => generate(&args, func),
    }
}

fn with_error(item: TokenStream, error: syn::Error) -> TokenStream {
    let error = error.into_compile_error();
    quote!(#item #error)
}

fn combine(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

/// Checks the signature; every problem is reported, each at its own span.
fn validate(func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    let mut errors = None;
    let mut error = |span: &dyn ToTokensSpan, message: &str| {
        combine(&mut errors, syn::Error::new(span.span_of(), message));
    };
    if let Some(token) = &sig.asyncness {
        error(
            token,
            "a pool task can't be `async`: remove `async` and make the function synchronous \
             (inside it, run async code with a runtime's `block_on`)",
        );
    }
    if let syn::Safety::Unsafe(token) = &sig.safety {
        error(
            token,
            "a pool task can't be `unsafe fn`: the pool calls it safely; remove `unsafe` and put \
             the unsafe code in an `unsafe { ... }` block inside the function",
        );
    }
    if let Some(abi) = &sig.abi {
        error(abi, "a pool task can't have an `extern` ABI: remove it");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        error(
            &sig.generics,
            "a pool task can't be generic: every rank must know its concrete types; write a \
             non-generic wrapper, e.g. `#[pool_task] fn run_f64(x: f64) -> f64 { run::<f64>(x) }`",
        );
    }
    if let Some(variadic) = &sig.variadic {
        error(variadic, "a pool task can't be variadic");
    }
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => error(
                receiver,
                "a pool task can't take `self`: it runs on another process; make it a free \
                 function outside the `impl` block and pass the value as an ordinary argument",
            ),
            FnArg::Typed(pat_type) => check_owned(&pat_type.ty, &mut error, "argument"),
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        check_owned(ty, &mut error, "return type");
    }
    errors.map_or(Ok(()), Err)
}

/// Rejects types that can't cross a process boundary: references, `impl Trait`, lifetimes.
fn check_owned(ty: &Type, error: &mut dyn FnMut(&dyn ToTokensSpan, &str), what: &str) {
    match ty {
        Type::Reference(r) => {
            let inner = &r.elem;
            let owned = match &**inner {
                Type::Path(p) if p.path.is_ident("str") => "String".to_owned(),
                Type::Slice(s) => {
                    let elem = &s.elem;
                    format!("Vec<{}>", quote!(#elem).to_string().replace(' ', ""))
                }
                other => quote!(#other).to_string().replace(' ', ""),
            };
            let borrowed = quote!(#ty).to_string().replace(' ', "");
            error(
                ty,
                &format!(
                    "a pool task's {what} must be an owned type: it is serialized and sent \
                     to another process; use `{owned}` instead of `{borrowed}`"
                ),
            );
        }
        Type::ImplTrait(_) => error(
            ty,
            &format!(
                "a pool task's {what} can't be `impl Trait`: every rank must know the concrete \
                 type; name it"
            ),
        ),
        Type::Paren(p) => check_owned(&p.elem, error, what),
        Type::Tuple(t) => {
            for elem in &t.elems {
                check_owned(elem, error, what);
            }
        }
        _ => {}
    }
}

/// Anything with a span, as a trait object so one error closure takes them all.
trait ToTokensSpan {
    fn span_of(&self) -> Span;
}

impl<T: Spanned> ToTokensSpan for T {
    fn span_of(&self) -> Span {
        self.span()
    }
}

fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Result"),
        Type::Paren(p) => is_result(&p.elem),
        _ => false,
    }
}

fn generate(args: &TaskArgs, func: ItemFn) -> TokenStream {
    let private = {
        let krate = runtime_path(args.krate.as_ref());
        quote!(#krate::__private)
    };
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
        ..
    } = func;
    let ident = sig.ident.clone();
    let (docs, others): (Vec<_>, Vec<_>) =
        attrs.into_iter().partition(|a| a.path().is_ident("doc"));
    let cfgs: Vec<_> = others
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .cloned()
        .collect();

    let types: Vec<Type> = sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(p) => Some((*p.ty).clone()),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let names: Vec<_> = (0..types.len())
        .map(|i| format_ident!("__pool_arg{}", i))
        .collect();
    let args_ty = match types.as_slice() {
        [one] => quote!(#one),
        many => quote!((#(#many,)*)),
    };
    let args_pat = match names.as_slice() {
        [one] => quote!(#one),
        many => quote!((#(#many,)*)),
    };
    let fn_ident = format_ident!("__pool_task_fn", span = ident.span());
    let call = quote!(#fn_ident(#(#names),*));
    let (ret_ty, output_ty, into_result) = match &sig.output {
        ReturnType::Default => (quote!(()), quote!(()), quote!(#private::Result::Ok(#call))),
        ReturnType::Type(_, ty) if is_result(ty) => (
            quote!(#ty),
            quote_spanned!(ty.span()=> <#ty as #private::TaskResult>::Ok),
            quote!(#private::TaskResult::into_task_result(#call)),
        ),
        ReturnType::Type(_, ty) => (quote!(#ty), quote!(#ty), quote!(#private::Result::Ok(#call))),
    };
    let name = match &args.name {
        Some(lit) => quote!(#lit),
        None => quote!(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident))),
    };
    let arg_checks = types.iter().map(|ty| {
        quote_spanned!(ty.span()=> let () = #private::assert_arg::<#ty>();)
    });
    let output_check = match &sig.output {
        ReturnType::Type(_, ty) => {
            quote_spanned!(ty.span()=> let () = #private::assert_output::<#output_ty>();)
        }
        ReturnType::Default => quote!(),
    };
    let signature = {
        let mut s = quote!(#sig).to_string();
        s.retain(|c| c != '\n');
        s
    };
    let summary = format!(
        " Pool task `{signature}`: call it as a function, or run it on a pool with \
         `pool.map({ident}, inputs)`."
    );
    sig.ident = fn_ident.clone();

    quote! {
        #(#docs)*
        #[doc = ""]
        #[doc = #summary]
        #(#cfgs)*
        #[allow(non_camel_case_types)]
        #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
        #vis struct #ident;

        #(#cfgs)*
        #[allow(non_upper_case_globals, unused_qualifications)]
        const _: () = {
            #(#others)*
            #sig #block

            #[automatically_derived]
            impl ::core::ops::Deref for #ident {
                type Target = fn(#(#types),*) -> #ret_ty;
                fn deref(&self) -> &Self::Target {
                    const __POOL_FN: fn(#(#types),*) -> #ret_ty = #fn_ident;
                    &__POOL_FN
                }
            }

            #[automatically_derived]
            impl #private::Task for #ident {
                type Args = #args_ty;
                type Output = #output_ty;
                const NAME: &'static str = #name;
            }

            const _: () = {
                #(#arg_checks)*
                #output_check
            };

            fn __pool_invoke(
                input: &[u8],
                output: &mut #private::Vec<u8>,
            ) -> #private::Result<(), #private::TaskFailure> {
                #private::invoke::<#args_ty, #output_ty>(input, output, |#args_pat| #into_result)
            }

            #private::inventory::submit! {
                #private::TaskEntry::new(<#ident as #private::Task>::NAME, __pool_invoke)
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(args: &str, item: &str) -> String {
        expand(args.parse().unwrap(), item.parse().unwrap()).to_string()
    }

    #[test]
    fn errors_keep_the_item() {
        let out = expand_str("", "async fn f(x: &u32) {}");
        assert!(out.contains("async fn f"), "{out}");
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("can't be `async`"), "{out}");
        assert!(out.contains("use `u32` instead of `&u32`"), "{out}");
    }

    #[test]
    fn result_detection() {
        assert!(is_result(&syn::parse_quote!(Result<u8, String>)));
        assert!(is_result(&syn::parse_quote!(std::io::Result<u8>)));
        assert!(!is_result(&syn::parse_quote!(Option<u8>)));
    }

    #[test]
    fn expansion_uses_absolute_paths() {
        let out = expand_str("", "fn f(a: u8, b: u8) -> u8 { a + b }");
        assert!(out.contains(":: pool_runtime :: __private :: invoke"), "{out}");
        assert!(out.contains("type Args = (u8 , u8 ,)"), "{out}");
        let out = expand_str(r#"crate = "::renamed""#, "fn f() {}");
        assert!(out.contains(":: renamed :: __private"), "{out}");
        assert!(out.contains("type Args = ()"), "{out}");
    }
}
