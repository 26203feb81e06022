//! `#[pool_task]`: parse, validate, expand.
//!
//! ```text
//! #[pool_task] pub fn analyze(run: Run) -> Summary { body }
//! ```
//! becomes
//! ```text
//! pub struct analyze;                        // the name users pass to pool.map
//! const _: () = {
//!     fn __pool_task_fn(run: Run) -> Summary { body }
//!     impl Deref for analyze { type Target = fn(Run) -> Summary; ... }   // analyze(run) works
//!     impl Task for analyze { type Args = Run; type Output = Summary; const NAME = ...; }
//!     fn __pool_invoke(input: &[u8], output: &mut Vec<u8>) -> Result<(), TaskFailure> {
//!         invoke_task::<analyze>(input, output, |arg| Ok(__pool_task_fn(arg)))
//!     }
//!     // (a fallible task: `into_task_result::<R>(value, causes)`, `causes` found by
//!     // `(&&Causes(&value)).causes()`, the error's `source()` chain when it has one)
//!     inventory::submit! { TaskEntry::new(NAME, __pool_invoke) }
//! };
//! ```
//!
//! Diagnostics: every type the user wrote appears, with its own span, exactly once where a
//! bound is checked (`type Args`, `type Output`, and the `TaskResult` conversion), so a type
//! that is not `Serialize` gives errors at that type and nowhere else. Everything else goes
//! through `Task`, whose bounds the runtime has already checked.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, Item, ItemFn, PathArguments, ReturnType, Type};

use crate::args::{TaskArgs, runtime_path};
use crate::valid::{is_result, state_type, validate};

const USAGE: &str = "`#[pool_task] fn name(arg: T) -> R { ... }`";

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func = match parse_fn(item.clone(), "pool_task", USAGE) {
        Ok(func) => func,
        Err(e) => return with_error(item, e),
    };
    let (args, args_error) = match syn::parse2::<TaskArgs>(args) {
        Ok(args) => (args, None),
        Err(e) => (TaskArgs::default(), Some(e)),
    };
    match validate(&func) {
        // Keep the user's function as it was, so that calls to it still compile; leave out
        // only the registration, which would add follow-on errors.
        Err(mut e) => {
            if let Some(args_error) = args_error {
                e.combine(args_error);
            }
            with_error(func.into_token_stream(), e)
        }
        // Bad arguments: expand with the default options, so the task is still a task.
        Ok(()) => {
            let expanded = generate(&args, func);
            match args_error {
                Some(e) => with_error(expanded, e),
                None => expanded,
            }
        }
    }
}

fn with_error(item: TokenStream, error: syn::Error) -> TokenStream {
    let error = error.into_compile_error();
    quote!(#item #error)
}

/// Parses the item as a function, or says, at the item's keyword, that `#[attr]` goes on one,
/// as in `usage`.
pub(crate) fn parse_fn(item: TokenStream, attr: &str, usage: &str) -> syn::Result<ItemFn> {
    let not_fn = |tokens: &dyn ToTokens, what: &str| {
        Err(syn::Error::new_spanned(
            tokens,
            format!("#[{attr}] goes on a function, not on {what}: {usage}"),
        ))
    };
    match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(func)) => Ok(func),
        Ok(Item::Struct(s)) => not_fn(&s.struct_token, "a struct"),
        Ok(Item::Enum(e)) => not_fn(&e.enum_token, "an enum"),
        Ok(Item::Union(u)) => not_fn(&u.union_token, "a union"),
        Ok(Item::Const(c)) => not_fn(&c.const_token, "a constant"),
        Ok(Item::Static(s)) => not_fn(&s.static_token, "a static"),
        Ok(Item::Impl(i)) => not_fn(&i.impl_token, "an `impl` block"),
        Ok(Item::Trait(t)) => not_fn(&t.trait_token, "a trait"),
        Ok(Item::Mod(m)) => not_fn(&m.mod_token, "a module"),
        Ok(Item::Type(t)) => not_fn(&t.type_token, "a type alias"),
        Ok(Item::Use(u)) => not_fn(&u.use_token, "a `use` item"),
        Ok(Item::ForeignMod(f)) => not_fn(&f.abi, "an `extern` block"),
        Ok(other) => not_fn(&other, "this item"),
        // Not an item syn knows; its own message, with the usage.
        Err(e) => match syn::parse2::<ItemFn>(item) {
            Ok(func) => Ok(func),
            Err(_) => Err(syn::Error::new(e.span(), format!("{e}; {usage}"))),
        },
    }
}

/// The `T` of a return type `...::Result<T, ...>`, as the user wrote it (with its spans).
fn result_ok_type(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Path(p) => match &p.path.segments.last()?.arguments {
            PathArguments::AngleBracketed(generic) => match generic.args.first()? {
                GenericArgument::Type(ok) => Some(ok),
                _ => None,
            },
            _ => None,
        },
        Type::Paren(p) => result_ok_type(&p.elem),
        Type::Group(g) => result_ok_type(&g.elem),
        _ => None,
    }
}

/// The `E` of a return type `...::Result<T, E>`, if written.
fn result_err_type(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Path(p) => match &p.path.segments.last()?.arguments {
            PathArguments::AngleBracketed(generic) => match generic.args.iter().nth(1)? {
                GenericArgument::Type(err) => Some(err),
                _ => None,
            },
            _ => None,
        },
        Type::Paren(p) => result_err_type(&p.elem),
        Type::Group(g) => result_err_type(&g.elem),
        _ => None,
    }
}

/// Sets the span of every token, so that an error about the expression lands on `span`.
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut new = Group::new(group.delimiter(), respan(group.stream(), span));
                new.set_span(span);
                tree = TokenTree::Group(new);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

fn generate(args: &TaskArgs, func: ItemFn) -> TokenStream {
    let krate = runtime_path(args.krate.as_ref());
    let private = quote!(#krate::__private);
    let summary = format!(
        " Pool task `{}`: call it as a function, or run it on a pool with \
         `pool.map({}, inputs)`.",
        pretty(&func.sig),
        func.sig.ident,
    );
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
        ..
    } = func;
    // The struct's name is the function's, at the function's name, but in the macro's
    // context: rustc and clippy don't lint names and paths that come from an external macro,
    // so a lowercase type name needs no `#[allow]` (which `#![forbid(..)]` would reject).
    let mut ident = sig.ident.clone();
    ident.set_span(Span::call_site().located_at(ident.span()));
    // Docs and deprecation describe the name users see, the struct; `cfg` applies to all;
    // everything else (`inline`, `allow`, ...) stays on the function.
    let on_struct =
        |a: &&syn::Attribute| a.path().is_ident("doc") || a.path().is_ident("deprecated");
    let (struct_attrs, fn_attrs): (Vec<_>, Vec<_>) = attrs.iter().partition(on_struct);
    let cfgs: Vec<_> = fn_attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .collect();

    // The impls below name a `#[deprecated]` task; only the user's own uses should warn.
    let allow_deprecated = struct_attrs
        .iter()
        .any(|a| a.path().is_ident("deprecated"))
        .then(|| quote!(#[allow(deprecated)]));

    let types: Vec<TokenStream> = sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(p) => Some(p.ty.to_token_stream()),
            FnArg::Receiver(_) => None,
        })
        .collect();
    // A first `&mut S` (or `&S`) is the worker's state, not an argument that travels.
    let state = match sig.inputs.first() {
        Some(FnArg::Typed(p)) => state_type(&p.ty).cloned(),
        _ => None,
    };
    let sent = &types[usize::from(state.is_some())..];
    let names: Vec<_> = (0..sent.len())
        .map(|i| format_ident!("__pool_arg{}", i))
        .collect();
    // Several arguments travel as a tuple; its parentheses carry the span of the parameter
    // list, so an error about the tuple points there.
    let args_ty = match sent {
        [one] => quote!(#one),
        many => {
            let mut tuple = Group::new(Delimiter::Parenthesis, quote!(#(#many,)*));
            tuple.set_span(sig.paren_token.span.join());
            tuple.into_token_stream()
        }
    };
    let args_pat = match names.as_slice() {
        [one] => quote!(#one),
        many => quote!((#(#many,)*)),
    };
    let fn_ident = format_ident!("__pool_task_fn", span = ident.span());
    let call = match &state {
        Some(_) => quote!(#fn_ident(__pool_state, #(#names),*)),
        None => quote!(#fn_ident(#(#names),*)),
    };
    let (ret_ty, output_ty, body) = match &sig.output {
        ReturnType::Default => (quote!(()), quote!(()), quote!(#private::Result::Ok(#call))),
        ReturnType::Type(_, ty) if is_result(ty) => {
            // `type Output` is the `T` the user wrote; the check that the error type is
            // `Display` happens once, in the body below.
            let output_ty = match result_ok_type(ty) {
                Some(ok) => quote!(#ok),
                None => quote_spanned!(ty.span()=> <#ty as #private::TaskResult>::Ok),
            };
            // Every token but the type's own is at the error type (or, when it isn't
            // written, as in `io::Result<T>`, at the return type), so a missing `Display`
            // is reported there.
            let span = result_err_type(ty).unwrap_or(ty).span();
            let convert = respan(quote!(#private::into_task_result::<), span);
            let close = respan(quote!(>(__pool_value, __pool_causes)), span);
            // The error's causes, through the most specific `CauseChain` impl for the
            // concrete type (autoref specialization): a `std::error::Error` walks its
            // `source()` chain; any other type has no causes to add and needs no bound here.
            let body = quote!({
                let __pool_value = #call;
                let __pool_causes = {
                    use #private::CauseChain as _;
                    (&&#private::Causes(&__pool_value)).causes()
                };
                #convert #ty #close
            });
            (quote!(#ty), output_ty, body)
        }
        ReturnType::Type(_, ty) => (
            quote!(#ty),
            quote!(#ty),
            quote!(#private::Result::Ok(#call)),
        ),
    };
    let name = match &args.name {
        Some(lit) => quote!(#lit),
        None => {
            let suffix = format!("::{ident}");
            quote!(::core::concat!(::core::module_path!(), #suffix))
        }
    };
    // `fn(u64) -> u64`, or `fn()` for a function without a return type.
    let fn_ret = match &sig.output {
        ReturnType::Default => quote!(),
        ReturnType::Type(..) => quote!(-> #ret_ty),
    };
    sig.ident = fn_ident.clone();
    // The state's type is named at the user's type, so that "not a worker state" is
    // reported there.
    let invoke = match &state {
        Some(state) => quote! {
            #private::invoke_task_with_state::<#ident, #state>(
                input,
                output,
                |__pool_state, #args_pat| #body,
            )
        },
        None => quote!(#private::invoke_task::<#ident>(input, output, |#args_pat| #body)),
    };

    quote! {
        #(#struct_attrs)*
        #[doc = ""]
        #[doc = #summary]
        #(#cfgs)*
        #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
        #vis struct #ident;

        #(#cfgs)*
        #allow_deprecated
        const _: () = {
            // A task must take its arguments by value: they arrive by value from another
            // process. Clippy's advice to borrow them instead would not compile.
            #[allow(clippy::needless_pass_by_value)]
            #(#fn_attrs)*
            #sig #block

            #[automatically_derived]
            impl ::core::ops::Deref for #ident {
                type Target = fn(#(#types),*) #fn_ret;
                fn deref(&self) -> &Self::Target {
                    const __POOL_FN: fn(#(#types),*) #fn_ret = #fn_ident;
                    &__POOL_FN
                }
            }

            #[automatically_derived]
            impl #private::Task for #ident {
                type Args = #args_ty;
                type Output = #output_ty;
                const NAME: &'static ::core::primitive::str = #name;
            }

            fn __pool_invoke(
                input: &[::core::primitive::u8],
                output: &mut #private::Vec<::core::primitive::u8>,
            ) -> #private::Result<(), #private::TaskFailure> {
                #invoke
            }

            #private::inventory::submit! {
                #private::TaskEntry::new(<#ident as #private::Task>::NAME, __pool_invoke)
            }
        };
    }
}

/// Tokens as a person would write them: `&mut [u8]`, `Vec<String>`, `fn f(x: u32) -> u32`.
pub(crate) fn pretty(tokens: &dyn ToTokens) -> String {
    let mut out = String::new();
    write_pretty(&mut out, tokens.to_token_stream());
    out.trim().to_owned()
}

fn write_pretty(out: &mut String, tokens: TokenStream) {
    // Whether the previous token was a word (identifier, literal, closing bracket), after
    // which a word needs a space.
    let mut after_word = false;
    let mut last_ident = String::new();
    for tree in tokens {
        match tree {
            TokenTree::Ident(ident) => {
                if after_word {
                    out.push(' ');
                }
                last_ident = ident.to_string();
                out.push_str(&last_ident);
                after_word = true;
            }
            TokenTree::Literal(literal) => {
                if after_word {
                    out.push(' ');
                }
                out.push_str(&literal.to_string());
                after_word = true;
                last_ident.clear();
            }
            TokenTree::Punct(punct) => {
                let joint = punct.spacing() == proc_macro2::Spacing::Joint;
                match punct.as_char() {
                    ',' | ';' => {
                        trim_end_space(out);
                        out.push(punct.as_char());
                        out.push(' ');
                    }
                    ':' if joint || out.ends_with(':') => out.push(':'),
                    ':' => out.push_str(": "),
                    '-' if joint => {
                        trim_end_space(out);
                        out.push_str(" -");
                    }
                    '>' if out.ends_with(" -") => out.push_str("> "),
                    '=' | '+' if !joint => {
                        trim_end_space(out);
                        out.push(' ');
                        out.push(punct.as_char());
                        out.push(' ');
                    }
                    '>' => {
                        trim_end_space(out);
                        out.push('>');
                        after_word = true;
                        last_ident.clear();
                        continue;
                    }
                    c => out.push(c),
                }
                after_word = false;
                last_ident.clear();
            }
            TokenTree::Group(group) => {
                let keyword_before = matches!(last_ident.as_str(), "mut" | "dyn" | "impl" | "as");
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => (" { ", " }"),
                    Delimiter::None => ("", ""),
                };
                if keyword_before {
                    out.push(' ');
                }
                out.push_str(open);
                write_pretty(out, group.stream());
                trim_end_space(out);
                out.push_str(close);
                after_word = true;
                last_ident.clear();
            }
        }
    }
}

fn trim_end_space(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
}

#[cfg(test)]
mod tests;
