//! `#[pool_main]`: parse, validate, expand.
//!
//! ```text
//! #[pool_main] fn main(pool: &mut Pool) -> Result<(), Error> { body }
//! ```
//! becomes
//! ```text
//! fn main() {
//!     fn __pool_main(pool: &mut Pool) -> Result<(), Error> { body }
//!     ::pool_runtime::__private::run::<_, Result<(), Error>>(|__pool: &mut Pool| __pool_main(__pool))
//! }
//! ```
//! Worker ranks never run the body: `run` sends them into the worker loop. With
//! `#[pool_main(workers = N)]`, the call is `run_spawning::<_, R>(N, ...)` instead; with
//! `#[pool_main(init = setup)]`, it is
//! `launch_with_init(setup)[.workers(N)].run::<_, R>(...)`: `Launch::new().init(setup)`,
//! checked at the user's path (a function without arguments that returns `()` or
//! `Result<(), E>`).

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

use crate::args::{MainArgs, runtime_path};
use crate::task::{parse_fn, pretty, respan};

const SIGNATURE: &str = "`#[pool_main] fn main(pool: &mut Pool) -> Result<(), Error>`";

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func = match parse_fn(item.clone(), "pool_main", SIGNATURE) {
        Ok(func) => func,
        Err(e) => {
            let e = e.into_compile_error();
            return quote!(#item #e);
        }
    };
    let (args, args_error) = match syn::parse2::<MainArgs>(args) {
        Ok(args) => (args, None),
        Err(e) => (MainArgs::default(), Some(e)),
    };
    let (expanded, error) = match validate(&func) {
        // Keep the user's code (renamed, so no "wrong `main` type" follows) without the call
        // into the runtime, which would only add follow-on errors.
        Err(mut e) => {
            if let Some(args_error) = args_error {
                e.combine(args_error);
            }
            (generate(&args, func, false), Some(e))
        }
        // Bad arguments alone: expand with the default options.
        Ok(()) => (generate(&args, func, true), args_error),
    };
    let error = error.map(syn::Error::into_compile_error);
    quote!(#expanded #error)
}

fn validate(func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    let mut errors: Vec<syn::Error> = Vec::new();
    if let Some(token) = &sig.asyncness {
        errors.push(syn::Error::new_spanned(
            token,
            "#[pool_main] can't be `async`: remove `async` (the pool runs synchronously; run \
             async code inside with a runtime's `block_on`)",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            format!(
                "#[pool_main] can't be generic: remove `{}`",
                pretty(&sig.generics)
            ),
        ));
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(
            where_clause,
            "#[pool_main] can't have a `where` clause: remove it",
        ));
    }
    match sig.inputs.len() {
        1 => match &sig.inputs[0] {
            FnArg::Typed(arg) if matches!(&*arg.ty, Type::Reference(r) if r.mutability.is_some()) =>
                {}
            FnArg::Typed(arg) => errors.push(syn::Error::new_spanned(
                &arg.ty,
                "#[pool_main] takes the pool by mutable reference: write `&mut Pool`",
            )),
            FnArg::Receiver(receiver) => errors.push(syn::Error::new_spanned(
                receiver,
                format!("#[pool_main] can't take `self`: write {SIGNATURE}"),
            )),
        },
        0 => errors.push(syn::Error::new(
            sig.paren_token.span.join(),
            "#[pool_main] needs a parameter for the pool: write `(pool: &mut Pool)`",
        )),
        _ => errors.push(syn::Error::new_spanned(
            &sig.inputs,
            format!(
                "#[pool_main] takes exactly one parameter, the pool: remove the others, as in \
                 {SIGNATURE}"
            ),
        )),
    }
    let mut all = errors.into_iter();
    match all.next() {
        None => Ok(()),
        Some(mut first) => {
            first.extend(all);
            Err(first)
        }
    }
}

fn generate(args: &MainArgs, func: ItemFn, call: bool) -> TokenStream {
    let krate = runtime_path(args.krate.as_ref());
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
        ..
    } = func;
    let outer_ident = sig.ident.clone();
    // At the user's name, so that a note about "the function defined here" shows it.
    let inner = format_ident!("__pool_main", span = outer_ident.span());
    sig.ident = inner.clone();
    let run = if call {
        // The pool goes through a closure so that a parameter of the wrong type is reported
        // at that type, and the return type is named in `run::<_, R>` so that an
        // unsupported one is reported at the return type.
        // The last token of the parameter's type: `String` in `&mut String`.
        let param_span = match sig.inputs.first() {
            Some(FnArg::Typed(arg)) => arg
                .ty
                .to_token_stream()
                .into_iter()
                .last()
                .map_or_else(|| arg.ty.span(), |token| token.span()),
            _ => Span::call_site(),
        };
        let call_inner = respan(quote!(#inner(__pool)), param_span);
        let ret = match &sig.output {
            ReturnType::Default => quote!(()),
            ReturnType::Type(_, ty) => quote!(#ty),
        };
        let closure = quote!(|__pool: &mut #krate::__private::Pool| #call_inner);
        match (&args.init, args.workers) {
            (Some(init), workers) => {
                let workers = workers.map(|workers| {
                    let workers = proc_macro2::Literal::u64_unsuffixed(workers);
                    quote!(.workers(#workers))
                });
                // At the path's span, so that a path that is not a fitting function is
                // reported there, once.
                let launch = respan(quote!(#krate::__private::launch_with_init), init.span());
                quote! {
                    #launch(#init)
                        #workers
                        .run::<_, #ret>(#closure)
                }
            }
            (None, None) => quote! {
                #krate::__private::run::<_, #ret>(#closure)
            },
            (None, Some(workers)) => {
                let workers = proc_macro2::Literal::u64_unsuffixed(workers);
                quote! {
                    #krate::__private::run_spawning::<_, #ret>(#workers, #closure,)
                }
            }
        }
    } else {
        quote!()
    };
    quote! {
        #(#attrs)*
        #vis fn #outer_ident() {
            #sig #block
            #run
        }
    }
}
