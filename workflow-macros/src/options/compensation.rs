//! `#[compensation(...)]`: an optional title and the compensation's own
//! behaviors.

use proc_macro2::TokenStream;
use syn::LitStr;
use syn::meta::ParseNestedMeta;

use super::behavior::{BehaviorOption, push_behavior};
use super::path_word;
use crate::errors::Errors;

/// What `#[compensation(...)]` said.
#[derive(Default)]
pub(crate) struct CompensationOptions {
    pub(crate) title: Option<LitStr>,
    /// Its behaviors, outermost first, as written.
    pub(crate) behaviors: Vec<BehaviorOption>,
}

impl CompensationOptions {
    /// Every option that reads; the errors of those that do not go to
    /// `errors`.
    pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> Self {
        let mut options = CompensationOptions::default();
        super::parse_each(args, errors, |meta| options.parse_one(meta));
        options
    }

    fn parse_one(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        let word = path_word(&meta.path);
        if push_behavior(&mut self.behaviors, &word, &meta)? {
            return Ok(());
        }
        if word == "title" {
            if self.title.is_some() {
                return Err(meta.error("duplicate option `title`"));
            }
            let title: LitStr = meta.value()?.parse()?;
            if title.value().trim().is_empty() {
                return Err(syn::Error::new(
                    title.span(),
                    "a compensation's title cannot be empty; leave it out to use the method's name",
                ));
            }
            self.title = Some(title);
            return Ok(());
        }
        Err(meta.error(format!(
            "unknown compensation option `{word}`; expected one of: title, retry, timeout, circuit_breaker"
        )))
    }
}
