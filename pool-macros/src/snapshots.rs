//! Expansion snapshots: every `tests/expand/NAME.rs` is expanded one level (only
//! `#[pool_task]` and `#[pool_main]`; the `inventory::submit!` and `derive`s they emit stay as
//! written), pretty-printed with `prettyplease`, and compared with `tests/expand/NAME.expanded.rs`,
//! so that every change to the generated code shows in review.
//!
//! `POOL_EXPAND=overwrite cargo test -p pool-macros` rewrites the snapshots; a missing one is
//! written and the test fails once, so that it is looked at and committed.

use std::path::{Path, PathBuf};

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Attribute, Item, Meta};

/// Expands the pool attributes on the items of `source`, pretty-printed.
fn expand_file(source: &str) -> String {
    let mut file: syn::File = syn::parse_str(source).expect("a snapshot input parses");
    let mut items = Vec::new();
    for item in std::mem::take(&mut file.items) {
        let Item::Fn(mut func) = item else {
            items.push(item);
            continue;
        };
        let Some(position) = func.attrs.iter().position(|a| macro_of(a).is_some()) else {
            items.push(Item::Fn(func));
            continue;
        };
        let attr = func.attrs.remove(position);
        let args = match &attr.meta {
            Meta::List(list) => list.tokens.clone(),
            _ => TokenStream::new(),
        };
        let item = func.into_token_stream();
        let expanded = match macro_of(&attr) {
            Some("pool_task") => crate::task::expand(args, item),
            _ => crate::entry::expand(args, item),
        };
        let expanded: syn::File = syn::parse2(expanded).expect("the expansion parses");
        items.extend(expanded.items);
    }
    file.items = items;
    prettyplease::unparse(&file)
}

/// `pool_task` or `pool_main`, if the attribute is one of them (by its last path segment).
fn macro_of(attr: &Attribute) -> Option<&'static str> {
    let last = attr.path().segments.last()?;
    ["pool_task", "pool_main"]
        .into_iter()
        .find(|name| last.ident == name)
}

fn inputs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/expand")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            path.extension().is_some_and(|e| e == "rs")
                && !path.to_string_lossy().ends_with(".expanded.rs")
        })
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn expansions_match_their_snapshots() {
    let overwrite = std::env::var("POOL_EXPAND").is_ok_and(|v| v == "overwrite");
    let mut problems = Vec::new();
    let inputs = inputs();
    assert!(!inputs.is_empty(), "no snapshot inputs in tests/expand");
    for input in inputs {
        let source = std::fs::read_to_string(&input).expect("read a snapshot input");
        let expanded = expand_file(&source);
        let snapshot = input.with_extension("expanded.rs");
        match std::fs::read_to_string(&snapshot) {
            Ok(old) if old == expanded => {}
            Ok(_) if overwrite => std::fs::write(&snapshot, &expanded).expect("write"),
            Ok(old) => problems.push(format!(
                "{} changed; if that is intended, run `POOL_EXPAND=overwrite cargo test -p \
                 pool-macros` and review the diff. First difference at line {}:\n  old: {}\n  \
                 new: {}",
                snapshot.display(),
                first_difference(&old, &expanded) + 1,
                old.lines()
                    .nth(first_difference(&old, &expanded))
                    .unwrap_or(""),
                expanded
                    .lines()
                    .nth(first_difference(&old, &expanded))
                    .unwrap_or(""),
            )),
            Err(_) => {
                std::fs::write(&snapshot, &expanded).expect("write");
                if !overwrite {
                    problems.push(format!(
                        "{} was missing and has been written: review it and commit it",
                        snapshot.display()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn first_difference(a: &str, b: &str) -> usize {
    a.lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.lines().count().min(b.lines().count()))
}
