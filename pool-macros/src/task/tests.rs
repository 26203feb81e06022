//! Unit tests of `#[pool_task]`'s expansion.

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
