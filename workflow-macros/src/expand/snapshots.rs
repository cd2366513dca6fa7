//! Expansion snapshots: each `tests/expand/NAME.rs` of the workspace,
//! with its `#[workflow]` and `#[step]` items expanded and printed the way
//! `cargo expand` prints them, must equal `tests/expand/NAME.expanded.rs`.
//!
//! Refresh them with `WORKFLOW_EXPAND=overwrite cargo test -p workflow-macros`.

use std::path::{Path, PathBuf};

use quote::ToTokens;

fn attribute_named(attrs: &mut Vec<syn::Attribute>, name: &str) -> Option<syn::Attribute> {
    let at = attrs.iter().position(|a| a.path().is_ident(name))?;
    Some(attrs.remove(at))
}

fn args(attr: &syn::Attribute) -> proc_macro2::TokenStream {
    match &attr.meta {
        syn::Meta::List(list) => list.tokens.clone(),
        _ => proc_macro2::TokenStream::new(),
    }
}

fn expand_file(source: &str) -> String {
    let mut file: syn::File = syn::parse_str(source).expect("snapshot input parses");
    let mut items = Vec::new();
    for mut item in std::mem::take(&mut file.items) {
        let expanded = match &mut item {
            syn::Item::Impl(imp) => attribute_named(&mut imp.attrs, "workflow")
                .map(|attr| super::workflow(args(&attr), imp.to_token_stream())),
            syn::Item::Fn(function) => attribute_named(&mut function.attrs, "step")
                .map(|attr| super::free_step(args(&attr), function.to_token_stream())),
            _ => None,
        };
        match expanded {
            Some(tokens) => {
                let expanded: syn::File = syn::parse2(tokens).expect("expansion parses");
                items.extend(expanded.items);
            }
            None => items.push(item),
        }
    }
    file.items = items;
    prettyplease::unparse(&file)
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut inputs: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/expand exists")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "rs")
                && !p.to_string_lossy().ends_with(".expanded.rs")
        })
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn expansions_match_their_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/expand");
    let overwrite = std::env::var_os("WORKFLOW_EXPAND").is_some_and(|v| v == "overwrite");
    let mut stale = Vec::new();
    let cases = inputs(&dir);
    assert!(
        cases.len() >= 3,
        "expected the expansion cases in {}",
        dir.display()
    );
    for input in cases {
        let expanded = expand_file(&std::fs::read_to_string(&input).unwrap());
        let snapshot = input.with_extension("expanded.rs");
        if overwrite {
            std::fs::write(&snapshot, &expanded).unwrap();
            continue;
        }
        match std::fs::read_to_string(&snapshot) {
            Ok(saved) if saved == expanded => {}
            _ => stale.push(format!("{}:\n{}", snapshot.display(), expanded)),
        }
    }
    assert!(
        stale.is_empty(),
        "expansions changed (rerun with WORKFLOW_EXPAND=overwrite to accept):\n{}",
        stale.join("\n")
    );
}
