//! Parse: find the `#[step]` attributes, read their options, and strip them
//! from the item, which is emitted again whatever happens next.

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use syn::parse::discouraged::Speculative;
use syn::parse::{ParseStream, Parser};
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

/// Parses `#[workflow]`'s impl block with each method's body kept as the
/// tokens it came as, in a block of one verbatim item: the macro never
/// looks inside a body and emits it as it came, and parsing statements
/// is most of what syn would do here (as tracing-attributes keeps an
/// instrumented function's body). A body that does not parse is left for
/// rustc to report where it is. Anything else goes through syn as usual.
pub(crate) fn impl_block(tokens: TokenStream) -> syn::Result<ItemImpl> {
    let mut trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
    let body = match trees.pop() {
        Some(TokenTree::Group(body)) if body.delimiter() == Delimiter::Brace => body,
        _ => return syn::parse2(tokens),
    };
    // The header, with an empty body, the way syn reads it.
    let mut header: TokenStream = trees.into_iter().collect();
    header.extend([TokenTree::Group(Group::new(
        Delimiter::Brace,
        TokenStream::new(),
    ))]);
    let mut item: ItemImpl = syn::parse2(header)?;
    item.brace_token = syn::token::Brace(body.delim_span());
    let (inner, items) = match items_with_bodies_set_aside(body.stream()) {
        Some(read) => read,
        None => Parser::parse2(impl_items, body.stream())?,
    };
    item.attrs.extend(inner);
    item.items = items;
    Ok(item)
}

/// The impl block's items read with each method's body set aside: syn's
/// reader walks every token it is given, every nested group one more
/// trip through the proc-macro bridge, so a body it only keeps would cost
/// as much as the code in it. Each brace group at the block's top level
/// is read as an empty one, then given back to the method that took it.
/// That holds when every such group is a method's body; a block with any
/// other (a `const` built with braces, a `{ N }` const argument, a
/// macro's braces), or one that does not parse, is `None`: read whole.
/// So is one holding an invisible group, a `macro_rules!` fragment, which
/// may be a body (`$body:block`) whose braces syn sees through.
fn items_with_bodies_set_aside(block: TokenStream) -> Option<(Vec<Attribute>, Vec<ImplItem>)> {
    let mut bodies = Vec::new();
    let emptied = block
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(group) if group.delimiter() == Delimiter::None => None,
            TokenTree::Group(group) if group.delimiter() == Delimiter::Brace => {
                let mut empty = Group::new(Delimiter::Brace, TokenStream::new());
                empty.set_span(group.span());
                bodies.push(group);
                Some(TokenTree::Group(empty))
            }
            tree => Some(tree),
        })
        .collect::<Option<TokenStream>>()?;
    let (inner, mut items) = Parser::parse2(impl_items, emptied).ok()?;
    let mut methods: Vec<&mut ImplItemFn> = items
        .iter_mut()
        .filter_map(|item| match item {
            ImplItem::Fn(method) => Some(method),
            _ => None,
        })
        .collect();
    if methods.len() != bodies.len() {
        return None;
    }
    for (method, body) in methods.iter_mut().zip(bodies) {
        method.block = kept_body(&body);
    }
    Some((inner, items))
}

/// An impl block's inner attributes and items, its methods' bodies kept
/// as tokens.
fn impl_items(input: ParseStream) -> syn::Result<(Vec<Attribute>, Vec<ImplItem>)> {
    let inner = Attribute::parse_inner(input)?;
    let mut items = Vec::new();
    while !input.is_empty() {
        let ahead = input.fork();
        items.push(match method_keeping_body(&ahead) {
            Ok(method) => {
                input.advance_to(&ahead);
                ImplItem::Fn(method)
            }
            Err(_) => input.parse()?,
        });
    }
    Ok((inner, items))
}

/// A method whose body is a brace group, kept as its tokens.
fn method_keeping_body(input: ParseStream) -> syn::Result<ImplItemFn> {
    let attrs = Attribute::parse_outer(input)?;
    let vis: syn::Visibility = input.parse()?;
    let defaultness: Option<syn::Token![default]> = input.parse()?;
    let sig: syn::Signature = input.parse()?;
    let body: Group = input.parse()?;
    if body.delimiter() != Delimiter::Brace {
        return Err(syn::Error::new(body.span(), "expected a method body"));
    }
    let block = kept_body(&body);
    let mut modifiers = syn::FnModifiers::default();
    modifiers.defaultness = defaultness;
    Ok(ImplItemFn {
        attrs,
        vis,
        modifiers,
        sig,
        block,
    })
}

/// A method's body as the tokens it came as.
fn kept_body(body: &Group) -> syn::Block {
    syn::Block {
        brace_token: syn::token::Brace(body.delim_span()),
        stmts: vec![syn::Stmt::Item(syn::Item::Verbatim(body.stream()))],
    }
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

#[cfg(test)]
mod tests {
    use quote::ToTokens;

    /// Read with its bodies kept as tokens, an impl block prints as syn's
    /// full parse of it does: the same attributes (a body's inner ones
    /// included), generics, items and bodies.
    #[test]
    fn an_impl_read_with_its_bodies_kept_prints_as_syns_full_parse() {
        let source = quote::quote! {
            /// Docs.
            impl<T: Clone> Orders<T> where T: Send {
                #![allow(unused)]
                const LIMIT: u32 = 3;
                type Out = T;
                #[step(given = "an order")]
                pub async fn order(&self, order: T) -> Result<T, Error> {
                    #![allow(clippy::all)]
                    let copy = order.clone();
                    if true { return Ok(copy); }
                    Ok(order)
                }
                fn plain(&self) {}
                nothing!();
            }
        };
        let kept = super::impl_block(source.clone()).unwrap();
        let full: syn::ItemImpl = syn::parse2(source).unwrap();
        assert_eq!(
            kept.to_token_stream().to_string(),
            full.to_token_stream().to_string()
        );
        assert_eq!(kept.items.len(), full.items.len());
    }

    /// The bodies are set aside when every brace group at the block's top
    /// level is a method's body, each given back to its own method; any
    /// other brace group there, or an invisible group (a `macro_rules!`
    /// fragment, which may be a body), has the block read whole.
    #[test]
    fn bodies_are_set_aside_only_when_every_top_level_brace_is_a_body() {
        use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};

        let plain = quote::quote! {
            #![allow(unused)]
            const LIMIT: u32 = 3;
            #[step(given = "an order")]
            pub async fn order(&self, order: Order) -> Order { let kept = 1; order }
            fn plain(&self) -> u32 { 2 }
            nothing!();
        };
        let (_, items) = super::items_with_bodies_set_aside(plain.clone()).unwrap();
        let (_, full) = syn::parse::Parser::parse2(super::impl_items, plain).unwrap();
        let printed = |items: &[syn::ImplItem]| -> Vec<String> {
            items
                .iter()
                .map(|item| item.to_token_stream().to_string())
                .collect()
        };
        assert_eq!(printed(&items), printed(&full));

        for other in [
            quote::quote! { const LIMITS: Limits = Limits { max: 3 }; fn a(&self) {} },
            quote::quote! { helpers! { fn b() {} } fn a(&self) {} },
            quote::quote! { fn a(&self) -> Pair<{ 2 }> { Pair } },
        ] {
            assert!(super::items_with_bodies_set_aside(other).is_none());
        }

        // `fn greet(&self) $body` with `const READY: () = {};` before it:
        // one brace group and one method, but the method's body is the
        // invisible group.
        let body = Group::new(
            Delimiter::None,
            quote::quote!({
                println!("hello");
            }),
        );
        let mut fragment: TokenStream = quote::quote! {
            const READY: () = {};
            fn greet(&self)
        };
        fragment.extend([TokenTree::Group(body)]);
        assert!(super::items_with_bodies_set_aside(fragment).is_none());
    }

    /// A body that does not parse is kept for rustc, which reports it
    /// where it is; the rest of the block reads as before.
    #[test]
    fn a_body_that_does_not_parse_is_kept_as_it_came() {
        let source = quote::quote! {
            impl Orders {
                fn amount(&self, cents: u64) -> u64 { cents * }
            }
        };
        assert!(syn::parse2::<syn::ItemImpl>(source.clone()).is_err());
        let kept = super::impl_block(source).unwrap();
        let syn::ImplItem::Fn(method) = &kept.items[0] else {
            panic!("the method was not read as one")
        };
        assert_eq!(method.sig.ident, "amount");
        assert_eq!(method.block.to_token_stream().to_string(), "{ cents * }");
    }
}
