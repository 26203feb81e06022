//! The runtime's modules depend downwards only: each module may use the modules of its own
//! layer or below, never above (comments aside). A new module must be given a layer here.

use std::collections::BTreeSet;
use std::path::Path;

/// Bottom first. The launcher (`runtime`, `spawn`, `sim`) composes everything.
const LAYERS: &[&[&str]] = &[
    // Pure: bytes in, bytes out, or process-wide facts.
    &[
        "codec", "protocol", "error", "host", "signals", "env", "bulk", "context", "gather",
        "frame",
    ],
    &["stats"],
    &["task", "journal", "progress", "state", "shared"],
    &["registry"],
    &["transport"],
    &["worker"],
    &["master"],
    &["pool"],
    &["runtime", "spawn", "sim"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn modules_depend_downwards_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut problems = BTreeSet::new();
    for path in all {
        let relative = path.strip_prefix(&src).expect("under src");
        let top = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a name")
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" {
            continue;
        }
        let Some(own) = layer(&top) else {
            problems.insert(format!("{top}: not in LAYERS (tests/layers.rs)"));
            continue;
        };
        let text = std::fs::read_to_string(&path).expect("readable");
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let used: String = line[at + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                match layer(&used) {
                    Some(l) if l > own => problems.insert(format!(
                        "{} uses crate::{used}, a layer above it",
                        relative.display()
                    )),
                    _ => false,
                };
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
