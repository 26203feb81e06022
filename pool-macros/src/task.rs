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
use syn::{FnArg, GenericArgument, GenericParam, Item, ItemFn, PathArguments, ReturnType, Type};

use crate::args::{TaskArgs, runtime_path};

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

/// Checks the signature; every problem is reported, each at its own tokens.
fn validate(func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    let mut errors = Errors::default();
    // `const fn` is fine: the pool calls it as an ordinary function.
    if let Some(token) = &sig.asyncness {
        errors.push(
            token,
            "a pool task can't be `async`: remove `async` and make the function synchronous \
             (inside it, run async code with a runtime's `block_on`)",
        );
    }
    if let syn::Safety::Unsafe(token) = &sig.safety {
        errors.push(
            token,
            "a pool task can't be `unsafe fn`: the pool calls it safely; remove `unsafe` and put \
             the unsafe code in an `unsafe { ... }` block inside the function",
        );
    }
    if let Some(abi) = &sig.abi {
        errors.push(
            abi,
            "a pool task can't have an `extern` ABI: remove it (and, if foreign code calls \
             the function, give that code a separate `extern` wrapper)",
        );
    }
    let params = &sig.generics.params;
    if params
        .iter()
        .all(|p| matches!(p, GenericParam::Lifetime(_)))
    {
        if !params.is_empty() {
            errors.push(
                &sig.generics,
                "a pool task can't have lifetime parameters: its arguments are owned values sent \
                 to another process; remove them and use owned types",
            );
        }
    } else {
        errors.push(
            &sig.generics,
            "a pool task can't be generic: every rank must know its concrete types; write a \
             non-generic wrapper, e.g. `#[pool_task] fn run_f64(x: f64) -> f64 { run::<f64>(x) }`",
        );
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(
            where_clause,
            "a pool task can't have a `where` clause: every rank must know its concrete types; \
             remove it",
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(variadic, "a pool task can't be variadic: remove `...`");
    }
    for (i, input) in sig.inputs.iter().enumerate() {
        match input {
            // The one reference a task may take: its worker's state, first.
            FnArg::Typed(pat_type) if i == 0 && state_type(&pat_type.ty).is_some() => {}
            FnArg::Receiver(receiver) => errors.push(
                receiver,
                "a pool task can't take `self`: it runs on another process; make it a free \
                 function outside the `impl` block and pass the value as an ordinary argument",
            ),
            FnArg::Typed(pat_type) => check_owned(&pat_type.ty, Position::Argument, &mut errors),
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        check_owned(ty, Position::Return, &mut errors);
    }
    errors.finish()
}

/// Errors collected in order; `finish` combines them into one.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds an error that spans all of `tokens`.
    fn push(&mut self, tokens: &dyn ToTokens, message: &str) {
        let error = syn::Error::new_spanned(tokens, message);
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The `S` of a first parameter `&mut S` or `&S` that names a worker state: a plain path
/// type (not a standard type that has an owned form to take instead, such as `&str`,
/// `&u64` or `&Vec<T>`), without a lifetime. `S: WorkerState` is checked by the compiler,
/// at `S`.
fn state_type(ty: &Type) -> Option<&Type> {
    const NOT_STATE: &[&str] = &[
        "bool", "char", "str", "String", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16",
        "i32", "i64", "i128", "isize", "f32", "f64", "Vec", "VecDeque", "Box", "Option", "Result",
        "HashMap", "BTreeMap", "HashSet", "BTreeSet", "Path", "PathBuf", "OsStr", "OsString",
        "Cow", "Rc", "Arc",
    ];
    let Type::Reference(r) = ty else {
        return None;
    };
    if r.lifetime.is_some() {
        return None;
    }
    let mut elem = &*r.elem;
    while let Type::Paren(p) = elem {
        elem = &p.elem;
    }
    match elem {
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?;
            let lifetimes = match &last.arguments {
                PathArguments::AngleBracketed(a) => a
                    .args
                    .iter()
                    .any(|a| matches!(a, GenericArgument::Lifetime(_))),
                _ => false,
            };
            (!lifetimes && !NOT_STATE.iter().any(|n| last.ident == n)).then_some(elem)
        }
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum Position {
    Argument,
    Return,
}

/// Rejects types that can't cross a process boundary: references, borrowed lifetimes and
/// `impl Trait`, also inside tuples, arrays and generic arguments (`Vec<&str>`).
fn check_owned(ty: &Type, position: Position, errors: &mut Errors) {
    match ty {
        Type::Reference(r) => {
            let owned = match &*r.elem {
                Type::Path(p) if p.path.is_ident("str") => "String".to_owned(),
                Type::Path(p) if p.path.is_ident("Path") => "PathBuf".to_owned(),
                Type::Path(p) if p.path.is_ident("OsStr") => "OsString".to_owned(),
                Type::Slice(s) => format!("Vec<{}>", pretty(&s.elem)),
                other => pretty(other),
            };
            let borrowed = pretty(ty);
            let message = match (position, r.mutability.is_some()) {
                (Position::Argument, true) => format!(
                    "a pool task can't take `{borrowed}`: it runs on another process and can't \
                     change the caller's value; take `{owned}` and return the new value"
                ),
                (Position::Argument, false) => format!(
                    "a pool task's argument must be an owned type: it is serialized and sent to \
                     another process; take `{owned}` instead of `{borrowed}`"
                ),
                (Position::Return, _) => format!(
                    "a pool task's return type must be an owned type: it is serialized and sent \
                     back to the master; return `{owned}` instead of `{borrowed}`"
                ),
            };
            errors.push(ty, &message);
        }
        Type::ImplTrait(_) => {
            let what = match position {
                Position::Argument => "argument",
                Position::Return => "return type",
            };
            errors.push(
                ty,
                &format!(
                    "a pool task's {what} can't be `impl Trait`: every rank must know the \
                     concrete type; write the concrete type instead"
                ),
            );
        }
        Type::Paren(p) => check_owned(&p.elem, position, errors),
        Type::Group(g) => check_owned(&g.elem, position, errors),
        Type::Array(a) => check_owned(&a.elem, position, errors),
        Type::Slice(s) => check_owned(&s.elem, position, errors),
        Type::Tuple(t) => {
            for elem in &t.elems {
                check_owned(elem, position, errors);
            }
        }
        Type::Path(p) => {
            for segment in &p.path.segments {
                let PathArguments::AngleBracketed(generic) = &segment.arguments else {
                    continue;
                };
                for arg in &generic.args {
                    match arg {
                        GenericArgument::Type(ty) => check_owned(ty, position, errors),
                        GenericArgument::Lifetime(lifetime) if lifetime.ident != "static" => {
                            errors.push(
                                lifetime,
                                "a pool task's types can't borrow: they are serialized and sent \
                                 to another process; use an owned type (or `'static`)",
                            );
                        }
                        _ => {}
                    }
                }
            }
        }
        _ => {}
    }
}

/// A return type spelled `...::Result<T, E>`: its last segment is `Result`. Such a task is
/// fallible; `Err(e)` becomes a task error.
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Result"),
        Type::Paren(p) => is_result(&p.elem),
        Type::Group(g) => is_result(&g.elem),
        _ => false,
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
        assert!(out.contains("take `u32` instead of `&u32`"), "{out}");
    }

    #[test]
    fn bad_arguments_still_expand() {
        let out = expand_str("threads = 4", "fn f(x: u32) -> u32 { x }");
        assert!(out.contains("compile_error"), "{out}");
        assert!(
            out.contains("impl :: pool_runtime :: __private :: Task for f"),
            "{out}"
        );
    }

    #[test]
    fn not_a_function() {
        let out = expand_str("", "struct S;");
        assert!(out.contains("struct S"), "{out}");
        assert!(out.contains("goes on a function, not on a struct"), "{out}");
    }

    #[test]
    fn result_detection() {
        assert!(is_result(&syn::parse_quote!(Result<u8, String>)));
        assert!(is_result(&syn::parse_quote!(std::io::Result<u8>)));
        assert!(!is_result(&syn::parse_quote!(Option<u8>)));
        let ty: Type = syn::parse_quote!(io::Result<Vec<u8>>);
        assert_eq!(pretty(result_ok_type(&ty).unwrap()), "Vec<u8>");
        assert!(result_ok_type(&syn::parse_quote!(Result)).is_none());
    }

    #[test]
    fn owned_checks() {
        let message = |sig: &str| {
            let func: ItemFn = syn::parse_str(&format!("{sig} {{}}")).unwrap();
            validate(&func).unwrap_err().to_string()
        };
        assert!(message("fn f(x: &mut u64)").contains("take `u64` and return the new value"));
        assert!(message("fn f(x: &[f64])").contains("take `Vec<f64>` instead of `&[f64]`"));
        assert!(
            message("fn f() -> &'static str").contains("return `String` instead of `&'static str`")
        );
        assert!(message("fn f(x: Vec<&str>)").contains("take `String` instead of `&str`"));
        assert!(message("fn f<'a>(x: u8)").contains("lifetime parameters"));
        assert!(message("fn f(x: u8) where u8: Copy").contains("`where` clause"));
        let func: ItemFn = syn::parse_str("fn f(x: std::borrow::Cow<'static, str>) {}").unwrap();
        assert!(validate(&func).is_ok());
        // One worker state, first; no other reference.
        for ok in [
            "fn f(s: &mut Fft, x: u8)",
            "fn f(s: &Fft)",
            "fn f(s: &mut m::Plan<f64>)",
        ] {
            let func: ItemFn = syn::parse_str(&format!("{ok} {{}}")).unwrap();
            assert!(validate(&func).is_ok(), "{ok}");
        }
        assert!(message("fn f(x: u8, s: &mut Fft)").contains("can't take `&mut Fft`"));
        assert!(message("fn f(s: &mut Fft, t: &Fft)").contains("instead of `&Fft`"));
        assert!(message("fn f(s: &'static Fft)").contains("instead of `&'static Fft`"));
        assert!(message("fn f(s: &mut Vec<u8>)").contains("take `Vec<u8>`"));
    }

    #[test]
    fn pretty_printing() {
        let ty: Type = syn::parse_quote!(&'a mut [std::vec::Vec<(u8, String)>]);
        assert_eq!(pretty(&ty), "&'a mut [std::vec::Vec<(u8, String)>]");
        let ty: Type = syn::parse_quote!(impl Iterator<Item = u32> + Send);
        assert_eq!(pretty(&ty), "impl Iterator<Item = u32> + Send");
        let sig: syn::Signature = syn::parse_quote!(fn f(a: u8, b: Vec<u8>) -> Result<(), E>);
        assert_eq!(pretty(&sig), "fn f(a: u8, b: Vec<u8>) -> Result<(), E>");
    }

    #[test]
    fn expansion_uses_absolute_paths() {
        let out = expand_str("", "fn f(a: u8, b: u8) -> u8 { a + b }");
        assert!(
            out.contains(":: pool_runtime :: __private :: invoke_task"),
            "{out}"
        );
        assert!(out.contains("type Args = (u8 , u8 ,)"), "{out}");
        let out = expand_str(r#"crate = "::renamed""#, "fn f() {}");
        assert!(out.contains(":: renamed :: __private"), "{out}");
        assert!(out.contains("type Args = ()"), "{out}");
    }
}
