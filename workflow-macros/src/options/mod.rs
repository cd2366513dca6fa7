//! The attributes' options, read while parsing: `#[step(...)]` (kind,
//! title, behaviors) and `#[workflow(...)]`.

mod behavior;
mod compensation;
mod step;
mod workflow;

use proc_macro2::Span;
use syn::Path;

use crate::errors::Errors;

pub(crate) use behavior::BehaviorOption;
pub(crate) use compensation::CompensationOptions;
pub(crate) use step::StepOptions;
pub(crate) use workflow::{WorkflowBehavior, WorkflowOptions};

/// A step's Given/When/Then role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Given,
    When,
    And,
    But,
    Then,
    Finally,
}

impl Kind {
    pub(crate) const ALL: [Kind; 6] = [
        Kind::Given,
        Kind::When,
        Kind::And,
        Kind::But,
        Kind::Then,
        Kind::Finally,
    ];

    pub(crate) fn keyword(self) -> &'static str {
        match self {
            Kind::Given => "given",
            Kind::When => "when",
            Kind::And => "and",
            Kind::But => "but",
            Kind::Then => "then",
            Kind::Finally => "finally",
        }
    }

    /// The runtime's `StepKind` variant.
    pub(crate) fn variant(self) -> &'static str {
        match self {
            Kind::Given => "Given",
            Kind::When => "When",
            Kind::And => "And",
            Kind::But => "But",
            Kind::Then => "Then",
            Kind::Finally => "Finally",
        }
    }

    pub(crate) fn from_keyword(word: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.keyword() == word)
    }
}

/// Reads a comma-separated option list with `one` per option. A bad
/// option is one error, and the rest still read: what it left of itself
/// is skipped up to the next option, and a failure of the whole list
/// after it (its echo) is not reported again.
pub(crate) fn parse_each(
    args: proc_macro2::TokenStream,
    errors: &mut Errors,
    mut one: impl FnMut(syn::meta::ParseNestedMeta<'_>) -> syn::Result<()>,
) {
    use syn::parse::Parser;
    let before = errors.count();
    let parsed = syn::meta::parser(|meta| {
        let input = meta.input;
        if let Err(error) = one(meta) {
            errors.push(error);
            while !input.is_empty() && !input.peek(syn::Token![,]) {
                input.parse::<proc_macro2::TokenTree>()?;
            }
        }
        Ok(())
    })
    .parse2(args);
    if let Err(error) = parsed
        && errors.count() == before
    {
        errors.push(error);
    }
}

pub(crate) fn path_word(path: &Path) -> String {
    match path.get_ident() {
        Some(ident) => ident.to_string(),
        None => quote::quote!(#path).to_string().replace(' ', ""),
    }
}

pub(crate) fn span_of(path: &Path) -> Span {
    path.segments
        .last()
        .map_or_else(Span::call_site, |s| s.ident.span())
}

/// `process_payment` → "process payment".
pub(crate) fn title_from_name(name: &syn::Ident) -> String {
    let name = name.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name);
    name.split('_')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_snake_case_names() {
        let title = |s: &str| title_from_name(&syn::Ident::new(s, Span::call_site()));
        assert_eq!(title("process_payment"), "process payment");
        assert_eq!(title("_private__step_"), "private step");
        assert_eq!(title("save"), "save");
    }
}
