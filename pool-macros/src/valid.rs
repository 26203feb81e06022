//! Checking a `#[pool_task]` function before it is expanded: every misuse becomes a spanned
//! error that says how to fix it, all of them collected into one.

use quote::ToTokens;
use syn::{FnArg, GenericArgument, GenericParam, ItemFn, PathArguments, ReturnType, Type};

use crate::task::pretty;

/// Checks the signature; every problem is reported, each at its own tokens.
pub(crate) fn validate(func: &ItemFn) -> syn::Result<()> {
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
pub(crate) struct Errors(Option<syn::Error>);

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
pub(crate) fn state_type(ty: &Type) -> Option<&Type> {
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
pub(crate) enum Position {
    Argument,
    Return,
}

/// Rejects types that can't cross a process boundary: references, borrowed lifetimes and
/// `impl Trait`, also inside tuples, arrays and generic arguments (`Vec<&str>`).
pub(crate) fn check_owned(ty: &Type, position: Position, errors: &mut Errors) {
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
pub(crate) fn is_result(ty: &Type) -> bool {
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
