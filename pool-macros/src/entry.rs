//! `#[pool_main]`: parse, validate, expand.
//!
//! ```ignore
//! #[pool_main] fn main(pool: &mut Pool) -> Result<(), Error> { body }
//! ```
//! becomes
//! ```ignore
//! fn main() {
//!     fn __pool_main(pool: &mut Pool) -> Result<(), Error> { body }
//!     ::pool_runtime::__private::run(__pool_main)
//! }
//! ```
//! Worker ranks never run the body: `run` sends them into the worker loop.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

use crate::args::{MainArgs, runtime_path};

const SIGNATURE: &str = "`#[pool_main] fn main(pool: &mut Pool) -> Result<(), Error>`";

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(e) => {
            let e = syn::Error::new(
                e.span(),
                format!("{e}; #[pool_main] goes on the entry function: {SIGNATURE}"),
            );
            let e = e.into_compile_error();
            return quote!(#item #e);
        }
    };
    let (args, mut errors) = match syn::parse2::<MainArgs>(args) {
        Ok(args) => (args, None),
        Err(e) => (MainArgs::default(), Some(e)),
    };
    if let Err(e) = validate(&func) {
        match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        }
    }
    match errors {
        // Keep the user's code (renamed, so no "wrong `main` type" follows) without the call
        // into the runtime, which would only add follow-on errors.
        Some(e) => {
            let e = e.into_compile_error();
            let expanded = generate(&args, func, false);
            quote!(#expanded #e)
        }
        None => generate(&args, func, true),
    }
}

fn validate(func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    let mut errors: Vec<syn::Error> = Vec::new();
    if let Some(token) = &sig.asyncness {
        errors.push(syn::Error::new(
            token.span(),
            format!("#[pool_main] can't be `async`: remove `async`; the pool runs synchronously: {SIGNATURE}"),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new(
            sig.generics.span(),
            format!("#[pool_main] can't be generic: {SIGNATURE}"),
        ));
    }
    match sig.inputs.len() {
        1 => match &sig.inputs[0] {
            FnArg::Typed(arg) if matches!(&*arg.ty, Type::Reference(r) if r.mutability.is_some()) => {}
            arg => errors.push(syn::Error::new(
                arg.span(),
                format!("#[pool_main] takes the pool as `pool: &mut Pool`: {SIGNATURE}"),
            )),
        },
        0 => errors.push(syn::Error::new(
            sig.paren_token.span.join(),
            format!("#[pool_main] needs a parameter for the pool: {SIGNATURE}"),
        )),
        _ => errors.push(syn::Error::new(
            sig.inputs.span(),
            format!("#[pool_main] takes exactly one parameter, the pool: {SIGNATURE}"),
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
    let inner = format_ident!("__pool_main");
    sig.ident = inner.clone();
    // The entry point runs the pool and never returns; its own signature has no inputs.
    let run = match &sig.output {
        _ if !call => quote!(),
        ReturnType::Type(_, ty) => quote_spanned!(ty.span()=> #krate::__private::run(#inner)),
        ReturnType::Default => quote!(#krate::__private::run(#inner)),
    };
    quote! {
        #(#attrs)*
        #vis fn #outer_ident() {
            #sig #block
            #run
        }
    }
}
