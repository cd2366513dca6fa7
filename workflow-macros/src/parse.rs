//! Parse: find the `#[step]` attributes, read their options, and strip them
//! from the item, which is emitted again whatever happens next.

use proc_macro2::TokenStream;
use syn::{Attribute, ImplItem, ImplItemFn, ItemImpl};

use crate::errors::Errors;
use crate::options::{CompensationOptions, StepOptions, WorkflowOptions};

/// A method marked `#[step]`, with its options, before validation.
pub(crate) struct RawStep {
    pub(crate) options: StepOptions,
    pub(crate) attr: Attribute,
    pub(crate) method: ImplItemFn,
}

/// A method marked `#[compensation]`, with its options.
pub(crate) struct RawCompensation {
    pub(crate) options: CompensationOptions,
    pub(crate) method: ImplItemFn,
}

/// The impl block's pieces.
pub(crate) struct RawWorkflow {
    pub(crate) options: WorkflowOptions,
    pub(crate) steps: Vec<RawStep>,
    pub(crate) compensations: Vec<RawCompensation>,
    /// How many methods carry `#[step]`, including those whose options did
    /// not parse (so a bad option is not also reported as "no steps").
    pub(crate) step_attrs: usize,
    pub(crate) doc: Option<String>,
}

fn is_step_attr(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "step")
}

fn is_compensation_attr(attr: &Attribute) -> bool {
    attr.path().is_ident("compensation")
}

/// Reads a `#[compensation]` or `#[compensation(title = "..", retry(..))]`.
fn compensation_options(attr: &Attribute, errors: &mut Errors) -> CompensationOptions {
    match &attr.meta {
        syn::Meta::Path(_) => CompensationOptions::default(),
        syn::Meta::List(list) => CompensationOptions::parse(list.tokens.clone(), errors),
        syn::Meta::NameValue(nv) => {
            errors.push(syn::Error::new_spanned(
                nv,
                "expected `#[compensation]` or `#[compensation(retry(max_attempts = 3))]`",
            ));
            CompensationOptions::default()
        }
    }
}

/// Reads `#[workflow(args)] impl ... { ... }`, removing each `#[step]` from
/// `item` so the impl block compiles on its own.
pub(crate) fn workflow(args: TokenStream, item: &mut ItemImpl, errors: &mut Errors) -> RawWorkflow {
    let options = errors
        .take(WorkflowOptions::parse(args))
        .unwrap_or_default();
    let mut steps = Vec::new();
    let mut compensations = Vec::new();
    let mut step_attrs = 0;
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        if let Some(at) = method.attrs.iter().position(is_compensation_attr) {
            let attr = method.attrs.remove(at);
            let options = compensation_options(&attr, errors);
            if let Some(step) = method.attrs.iter().find(|a| is_step_attr(a)) {
                errors.push(syn::Error::new_spanned(
                    step,
                    "a method is a step or a compensation, not both",
                ));
                method.attrs.retain(|a| !is_step_attr(a));
            }
            compensations.push(RawCompensation {
                options,
                method: method.clone(),
            });
            continue;
        }
        let Some(at) = method.attrs.iter().position(is_step_attr) else {
            continue;
        };
        let attr = method.attrs.remove(at);
        step_attrs += 1;
        if let Some(again) = method.attrs.iter().find(|a| is_step_attr(a)) {
            errors.push(syn::Error::new_spanned(
                again,
                "a method takes one `#[step]` attribute",
            ));
            method.attrs.retain(|a| !is_step_attr(a));
        }
        let options = step_options(&attr, errors);
        steps.push(RawStep {
            options,
            attr,
            method: method.clone(),
        });
    }
    RawWorkflow {
        options,
        steps,
        compensations,
        step_attrs,
        doc: doc_comment(&item.attrs),
    }
}

/// Reads the options of a `#[step]` attribute in any form: `#[step]`,
/// `#[step(when = "...")]`.
/// The options that read; the errors of those that do not go to `errors`.
pub(crate) fn step_options(attr: &Attribute, errors: &mut Errors) -> StepOptions {
    match &attr.meta {
        syn::Meta::Path(_) => StepOptions::default(),
        syn::Meta::List(list) => StepOptions::parse(list.tokens.clone(), errors),
        syn::Meta::NameValue(nv) => {
            errors.push(syn::Error::new_spanned(
                nv,
                "expected `#[step]` or `#[step(when = \"title\")]`",
            ));
            StepOptions::default()
        }
    }
}

/// The first paragraph of the doc comment, on one line.
pub(crate) fn doc_comment(attrs: &[Attribute]) -> Option<String> {
    let mut lines = Vec::new();
    for attr in attrs {
        let syn::Meta::NameValue(nv) = &attr.meta else {
            continue;
        };
        if !nv.path.is_ident("doc") {
            continue;
        }
        let syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) = &nv.value
        else {
            continue;
        };
        let line = s.value().trim().to_owned();
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(line);
    }
    (!lines.is_empty()).then(|| lines.join(" "))
}
