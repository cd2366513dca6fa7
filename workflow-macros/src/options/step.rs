//! `#[step(...)]`: one kind, an optional title, behaviors, and whether it
//! runs in the store's transaction.

use proc_macro2::{Span, TokenStream};
use syn::LitStr;
use syn::meta::ParseNestedMeta;

use super::behavior::{BehaviorOption, push_behavior};
use super::{Kind, path_word, span_of};
use crate::errors::Errors;

/// What `#[step(...)]` said.
#[derive(Default)]
pub(crate) struct StepOptions {
    /// The kind and the span of its keyword.
    pub(crate) kind: Option<(Kind, Span)>,
    pub(crate) title: Option<LitStr>,
    /// Per-step behaviors, outermost first, as written.
    pub(crate) behaviors: Vec<BehaviorOption>,
    /// The span of `transactional`, when given.
    pub(crate) transactional: Option<Span>,
    /// The span of `replayable`, when given: behaviors from the context
    /// (a runner's `behavior_for::<T>(Retry ..)`) may run its body again.
    pub(crate) replayable: Option<Span>,
    /// `compensate = method`: the `#[compensation]` that undoes it.
    pub(crate) compensate: Option<syn::Ident>,
}

const STEP_OPTIONS: &str = "given, when, and, but, then, finally, retry, timeout, circuit_breaker, behaviors, transactional, replayable, compensate";

impl StepOptions {
    /// Every option that reads; the errors of those that do not go to
    /// `errors`. A step with one bad option keeps its kind, title and other
    /// options, so the rest of the workflow is still checked and expanded.
    pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> Self {
        let mut options = StepOptions::default();
        super::parse_each(args, errors, |meta| options.parse_one(meta));
        options
    }

    fn parse_one(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        let word = path_word(&meta.path);
        if word == "behaviors" {
            if self
                .behaviors
                .iter()
                .any(|b| matches!(b, BehaviorOption::Values { .. }))
            {
                return Err(meta.error("duplicate option `behaviors`"));
            }
            let content;
            syn::parenthesized!(content in meta.input);
            let exprs = content
                .parse_terminated(<syn::Expr as syn::parse::Parse>::parse, syn::Token![,])?;
            if exprs.is_empty() {
                return Err(meta.error(
                    "`behaviors(..)` lists behavior values: `behaviors(Fallback::to(cached), Logging)`",
                ));
            }
            self.behaviors.push(BehaviorOption::Values {
                span: span_of(&meta.path),
                exprs: exprs.into_iter().collect(),
            });
            return Ok(());
        }
        if push_behavior(&mut self.behaviors, &word, &meta)? {
            return Ok(());
        }
        if word == "replayable" {
            if self.replayable.is_some() {
                return Err(meta.error("duplicate option `replayable`"));
            }
            self.replayable = Some(span_of(&meta.path));
            return Ok(());
        }
        if word == "compensate" {
            if self.compensate.is_some() {
                return Err(meta.error("duplicate option `compensate`"));
            }
            let name: syn::Ident = meta.value()?.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected the name of a `#[compensation]` method: `compensate = refund`",
                )
            })?;
            self.compensate = Some(name);
            return Ok(());
        }
        if word == "transactional" {
            if self.transactional.is_some() {
                return Err(meta.error("duplicate option `transactional`"));
            }
            self.transactional = Some(span_of(&meta.path));
            return Ok(());
        }
        let Some(kind) = Kind::from_keyword(&word) else {
            return Err(meta.error(format!(
                "unknown step option `{word}`; expected one of: {STEP_OPTIONS}"
            )));
        };
        if let Some((seen, _)) = self.kind {
            return Err(if seen == kind {
                meta.error(format!("duplicate option `{word}`"))
            } else {
                meta.error(format!(
                    "a step has one kind: this one is already `{}`",
                    seen.keyword()
                ))
            });
        }
        self.kind = Some((kind, span_of(&meta.path)));
        if meta.input.peek(syn::Token![=]) {
            let title: LitStr = meta.value()?.parse()?;
            if title.value().trim().is_empty() {
                return Err(syn::Error::new(
                    title.span(),
                    "a step's title cannot be empty; leave it out to use the function's name",
                ));
            }
            self.title = Some(title);
        }
        Ok(())
    }
}
