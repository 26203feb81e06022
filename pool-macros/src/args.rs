//! Parsing of the macros' arguments.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::parse::{Parse, ParseStream};
use syn::{Expr, LitInt, LitStr, Path, Token};

const NAME_EXAMPLE: &str = "name = \"module::task\"";
const CRATE_EXAMPLE: &str = "crate = \"::pool_runtime\"";
const WORKERS_EXAMPLE: &str = "workers = 4";
const INIT_EXAMPLE: &str = "init = setup";

/// MPI counts processes in `int`s, and the master is one of them.
const MAX_WORKERS: u64 = i32::MAX as u64 - 1;

mod kw {
    syn::custom_keyword!(init);
    syn::custom_keyword!(name);
    syn::custom_keyword!(workers);
}

/// Arguments of `#[pool_task]`.
#[derive(Default)]
pub(crate) struct TaskArgs {
    pub(crate) name: Option<LitStr>,
    pub(crate) krate: Option<Path>,
}

/// Arguments of `#[pool_main]`.
#[derive(Default)]
pub(crate) struct MainArgs {
    pub(crate) krate: Option<Path>,
    /// `workers = N`: spawn N workers when started as a single process.
    pub(crate) workers: Option<u64>,
    /// `init = path`: a function to run on every rank before the pool starts.
    pub(crate) init: Option<Path>,
}

/// The runtime crate's path: `crate = "..."` or `::pool_runtime`.
pub(crate) fn runtime_path(krate: Option<&Path>) -> TokenStream {
    match krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::pool_runtime),
    }
}

/// `= "value"` after `key`, with errors that show the expected form.
fn parse_value(input: ParseStream<'_>, key: Span, example: &str) -> syn::Result<LitStr> {
    if !input.peek(Token![=]) {
        return Err(syn::Error::new(
            key,
            format!("expected a value: `{example}`"),
        ));
    }
    input.parse::<Token![=]>()?;
    if input.peek(LitStr) {
        input.parse()
    } else {
        Err(input.error(format!("expected a string: `{example}`")))
    }
}

fn parse_crate_path(input: ParseStream<'_>, key: Span) -> syn::Result<Path> {
    let lit = parse_value(input, key, CRATE_EXAMPLE)?;
    lit.parse::<Path>().map_err(|_| {
        syn::Error::new(
            lit.span(),
            format!("expected a path to the pool runtime crate: `{CRATE_EXAMPLE}`"),
        )
    })
}

fn set_once<T>(slot: &mut Option<T>, value: T, span: Span, what: &str) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            span,
            format!("`{what}` is set twice; remove one of them"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

// #[pool_task]
// #[pool_task(name = "stable::name")]
// #[pool_task(crate = "::my::pool_runtime")]
// #[pool_task(name = "stable::name", crate = "::my::pool_runtime")]
impl Parse for TaskArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = TaskArgs::default();
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::name) {
                let key: kw::name = input.parse()?;
                let lit = parse_value(input, key.span, NAME_EXAMPLE)?;
                if lit.value().is_empty() {
                    return Err(syn::Error::new(
                        lit.span(),
                        format!("a task name must not be empty: `{NAME_EXAMPLE}`"),
                    ));
                }
                set_once(&mut args.name, lit, key.span, "name")?;
            } else if lookahead.peek(Token![crate]) {
                let key: Token![crate] = input.parse()?;
                let path = parse_crate_path(input, key.span)?;
                set_once(&mut args.krate, path, key.span, "crate")?;
            } else {
                return Err(lookahead.error());
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

/// `= N` after `workers`: a positive integer without suffix.
fn parse_workers(input: ParseStream<'_>, key: Span) -> syn::Result<u64> {
    if !input.peek(Token![=]) {
        return Err(syn::Error::new(
            key,
            format!("expected a value: `{WORKERS_EXAMPLE}`"),
        ));
    }
    input.parse::<Token![=]>()?;
    if !input.peek(LitInt) {
        return Err(input.error(format!(
            "expected a number of worker processes: `{WORKERS_EXAMPLE}`"
        )));
    }
    let lit: LitInt = input.parse()?;
    if !lit.suffix().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            format!("write the number without a type suffix: `{WORKERS_EXAMPLE}`"),
        ));
    }
    match lit.base10_parse::<i128>() {
        Ok(n) if n < 1 => Err(syn::Error::new(
            lit.span(),
            format!(
                "`workers` must be at least 1, as in `{WORKERS_EXAMPLE}`; remove it to run the \
                 tasks on threads of the single process"
            ),
        )),
        Ok(n) if n <= i128::from(MAX_WORKERS) => Ok(n as u64),
        _ => Err(syn::Error::new(
            lit.span(),
            format!("at most {MAX_WORKERS} workers can be spawned"),
        )),
    }
}

/// `= path` after `init`: the path of a function, with an error that says how to write it
/// for anything else (a string, a call, a closure).
fn parse_init(input: ParseStream<'_>, key: Span) -> syn::Result<Path> {
    if !input.peek(Token![=]) {
        return Err(syn::Error::new(
            key,
            format!("expected a value: `{INIT_EXAMPLE}`, where `fn setup() {{ ... }}`"),
        ));
    }
    input.parse::<Token![=]>()?;
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        let name = lit.value();
        let example = if lit.parse::<Path>().is_ok() {
            format!("init = {name}")
        } else {
            INIT_EXAMPLE.to_owned()
        };
        return Err(syn::Error::new(
            lit.span(),
            format!("write the function's path without quotes: `{example}`"),
        ));
    }
    let expr: Expr = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("expected the path of a function: `{INIT_EXAMPLE}`"),
        )
    })?;
    match expr {
        Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => Ok(p.path),
        Expr::Call(call) if call.args.is_empty() => {
            let example = match &*call.func {
                Expr::Path(p) => format!("init = {}", crate::task::pretty(&p.path)),
                _ => INIT_EXAMPLE.to_owned(),
            };
            Err(syn::Error::new(
                call.paren_token.span.join(),
                format!(
                    "name the function without calling it: `{example}` (the pool calls it, on \
                     every rank)"
                ),
            ))
        }
        Expr::Closure(closure) => Err(syn::Error::new_spanned(
            closure,
            format!(
                "`init` takes the path of a function, not a closure: move the code into \
                 `fn setup() {{ ... }}` and write `{INIT_EXAMPLE}`"
            ),
        )),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`init` takes the path of a function: `{INIT_EXAMPLE}`, where \
                 `fn setup() {{ ... }}`"
            ),
        )),
    }
}

// #[pool_main]
// #[pool_main(workers = 4)]
// #[pool_main(init = setup)]
// #[pool_main(crate = "::my::pool_runtime")]
// #[pool_main(init = setup, workers = 4, crate = "::my::pool_runtime")]
impl Parse for MainArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = MainArgs::default();
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::workers) {
                let key: kw::workers = input.parse()?;
                let workers = parse_workers(input, key.span)?;
                set_once(&mut args.workers, workers, key.span, "workers")?;
            } else if lookahead.peek(kw::init) {
                let key: kw::init = input.parse()?;
                let init = parse_init(input, key.span)?;
                set_once(&mut args.init, init, key.span, "init")?;
            } else if lookahead.peek(Token![crate]) {
                let key: Token![crate] = input.parse()?;
                let path = parse_crate_path(input, key.span)?;
                set_once(&mut args.krate, path, key.span, "crate")?;
            } else {
                return Err(lookahead.error());
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_args() {
        let a: TaskArgs = syn::parse_str(r#"name = "x::y", crate = "::p""#).unwrap();
        assert_eq!(a.name.unwrap().value(), "x::y");
        assert!(a.krate.is_some());
        let e = syn::parse_str::<TaskArgs>(r#"name = "a", name = "b""#)
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "`name` is set twice; remove one of them");
        let e = syn::parse_str::<TaskArgs>("threads = 4").err().unwrap();
        assert_eq!(e.to_string(), "expected `name` or `crate`");
    }

    #[test]
    fn init_args() {
        let a: MainArgs = syn::parse_str("init = setup::logging, workers = 2").unwrap();
        assert_eq!(crate::task::pretty(&a.init.unwrap()), "setup::logging");
        assert_eq!(a.workers, Some(2));
        for (text, error) in [
            (
                "init",
                "expected a value: `init = setup`, where `fn setup() { ... }`",
            ),
            (
                "init = \"setup\"",
                "write the function's path without quotes: `init = setup`",
            ),
            (
                "init = \"not a path\"",
                "write the function's path without quotes: `init = setup`",
            ),
            (
                "init = setup()",
                "name the function without calling it: `init = setup` (the pool calls it, on \
                 every rank)",
            ),
            (
                "init = || {}",
                "`init` takes the path of a function, not a closure: move the code into `fn \
                 setup() { ... }` and write `init = setup`",
            ),
            (
                "init = 4",
                "`init` takes the path of a function: `init = setup`, where `fn setup() { ... }`",
            ),
            (
                "init = a, init = b",
                "`init` is set twice; remove one of them",
            ),
        ] {
            let e = syn::parse_str::<MainArgs>(text).err().unwrap();
            assert_eq!(e.to_string(), error, "{text}");
        }
    }

    #[test]
    fn main_args() {
        assert!(syn::parse_str::<MainArgs>("").unwrap().krate.is_none());
        let e = syn::parse_str::<MainArgs>(r#"crate = "not a path!""#)
            .err()
            .unwrap();
        assert!(e.to_string().starts_with("expected a path"));
        let a: MainArgs = syn::parse_str(r#"workers = 3, crate = "::p""#).unwrap();
        assert_eq!(a.workers, Some(3));
        for (text, error) in [
            ("workers", "expected a value: `workers = 4`"),
            (
                "workers = \"4\"",
                "expected a number of worker processes: `workers = 4`",
            ),
            (
                "workers = -1",
                "`workers` must be at least 1, as in `workers = 4`; remove it to run the tasks \
                 on threads of the single process",
            ),
            (
                "workers = 4u8",
                "write the number without a type suffix: `workers = 4`",
            ),
            (
                "workers = 0",
                "`workers` must be at least 1, as in `workers = 4`; remove it to run the tasks \
                 on threads of the single process",
            ),
            (
                "workers = 99999999999",
                "at most 2147483646 workers can be spawned",
            ),
            (
                "workers = 2, workers = 3",
                "`workers` is set twice; remove one of them",
            ),
            ("threads = 4", "expected one of: `workers`, `init`, `crate`"),
        ] {
            let e = syn::parse_str::<MainArgs>(text).err().unwrap();
            assert_eq!(e.to_string(), error, "{text}");
        }
    }
}
