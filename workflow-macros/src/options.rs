//! The attributes' options: `#[step(when = "...")]` and
//! `#[workflow(name = "...", description = "...", crate = path)]`.

use proc_macro2::{Span, TokenStream};
use std::time::Duration;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;

use syn::{LitInt, LitStr, Path};

use crate::duration;

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

    fn from_keyword(word: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.keyword() == word)
    }
}

/// What `#[step(...)]` said.
#[derive(Default)]
pub(crate) struct StepOptions {
    /// The kind and the span of its keyword.
    pub(crate) kind: Option<(Kind, Span)>,
    pub(crate) title: Option<LitStr>,
    /// Per-step behaviors, outermost first, as written.
    pub(crate) behaviors: Vec<BehaviorOption>,
}

/// A behavior declared on a step.
pub(crate) enum BehaviorOption {
    Retry {
        span: Span,
        max: u32,
        backoff: Option<Duration>,
        max_delay: Option<Duration>,
        jitter: bool,
    },
    Timeout {
        span: Span,
        limit: Duration,
    },
    CircuitBreaker {
        span: Span,
        name: String,
        failures: Option<u32>,
        open_for: Option<Duration>,
    },
}

impl BehaviorOption {
    fn keyword(&self) -> &'static str {
        match self {
            BehaviorOption::Retry { .. } => "retry",
            BehaviorOption::Timeout { .. } => "timeout",
            BehaviorOption::CircuitBreaker { .. } => "circuit_breaker",
        }
    }

    pub(crate) fn span(&self) -> Span {
        match self {
            BehaviorOption::Retry { span, .. }
            | BehaviorOption::Timeout { span, .. }
            | BehaviorOption::CircuitBreaker { span, .. } => *span,
        }
    }
}

const STEP_OPTIONS: &str = "given, when, and, but, then, finally, retry, timeout, circuit_breaker";

impl StepOptions {
    pub(crate) fn parse(args: TokenStream) -> syn::Result<Self> {
        let mut options = StepOptions::default();
        syn::meta::parser(|meta| options.parse_one(meta)).parse2(args)?;
        Ok(options)
    }

    fn parse_one(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        let word = path_word(&meta.path);
        if let Some(behavior) = parse_behavior(&word, &meta)? {
            if self
                .behaviors
                .iter()
                .any(|b| b.keyword() == behavior.keyword())
            {
                return Err(meta.error(format!("duplicate option `{word}`")));
            }
            self.behaviors.push(behavior);
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

fn parse_behavior(word: &str, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<BehaviorOption>> {
    let span = span_of(&meta.path);
    Ok(Some(match word {
        "timeout" => {
            let lit: LitStr = meta.value()?.parse()?;
            BehaviorOption::Timeout {
                span,
                limit: duration::parse(&lit)?,
            }
        }
        "retry" => {
            let mut max = None;
            let (mut backoff, mut max_delay, mut jitter) = (None, None, false);
            meta.parse_nested_meta(|inner| {
                let key = path_word(&inner.path);
                let seen = match key.as_str() {
                    "max" => max.is_some(),
                    "backoff" => backoff.is_some(),
                    "max_delay" => max_delay.is_some(),
                    "jitter" => jitter,
                    _ => {
                        return Err(inner.error(format!(
                            "unknown retry option `{key}`; expected one of: max, backoff, max_delay, jitter"
                        )));
                    }
                };
                if seen {
                    return Err(inner.error(format!("duplicate option `{key}`")));
                }
                match key.as_str() {
                    "max" => max = Some(positive(&inner, "attempts")?),
                    "backoff" => backoff = Some(duration::parse(&inner.value()?.parse()?)?),
                    "max_delay" => max_delay = Some(duration::parse(&inner.value()?.parse()?)?),
                    _ => jitter = true,
                }
                Ok(())
            })?;
            let Some(max) = max else {
                return Err(meta.error("`retry` needs `max`, the most attempts: `retry(max = 3)`"));
            };
            BehaviorOption::Retry {
                span,
                max,
                backoff,
                max_delay,
                jitter,
            }
        }
        "circuit_breaker" => {
            let (mut name, mut failures, mut open_for) = (None, None, None);
            meta.parse_nested_meta(|inner| {
                let key = path_word(&inner.path);
                let seen = match key.as_str() {
                    "name" => name.is_some(),
                    "failures" => failures.is_some(),
                    "open_for" => open_for.is_some(),
                    _ => {
                        return Err(inner.error(format!(
                            "unknown circuit_breaker option `{key}`; expected one of: name, failures, open_for"
                        )));
                    }
                };
                if seen {
                    return Err(inner.error(format!("duplicate option `{key}`")));
                }
                match key.as_str() {
                    "name" => {
                        let lit: LitStr = inner.value()?.parse()?;
                        if lit.value().trim().is_empty() {
                            return Err(syn::Error::new(lit.span(), "a circuit breaker's name cannot be empty"));
                        }
                        name = Some(lit.value());
                    }
                    "failures" => failures = Some(positive(&inner, "failures")?),
                    _ => open_for = Some(duration::parse(&inner.value()?.parse()?)?),
                }
                Ok(())
            })?;
            let Some(name) = name else {
                return Err(meta.error(
                    "`circuit_breaker` needs a `name`: steps naming the same breaker share it",
                ));
            };
            BehaviorOption::CircuitBreaker {
                span,
                name,
                failures,
                open_for,
            }
        }
        _ => return Ok(None),
    }))
}

/// A whole number above zero.
fn positive(meta: &ParseNestedMeta<'_>, what: &str) -> syn::Result<u32> {
    let lit: LitInt = meta.value()?.parse()?;
    let n: u32 = lit.base10_parse()?;
    if n == 0 {
        return Err(syn::Error::new(
            lit.span(),
            format!("{what} must be at least 1"),
        ));
    }
    Ok(n)
}

/// What `#[workflow(...)]` said.
#[derive(Default)]
pub(crate) struct WorkflowOptions {
    pub(crate) name: Option<LitStr>,
    pub(crate) description: Option<LitStr>,
    pub(crate) krate: Option<Path>,
    pub(crate) every: Option<Duration>,
    /// The span of `run_immediately`, when given.
    pub(crate) run_immediately: Option<Span>,
    /// `handlers(Request => Response, ...)`, when given.
    pub(crate) handlers: Option<Vec<(syn::Type, syn::Type)>>,
}

impl WorkflowOptions {
    pub(crate) fn parse(args: TokenStream) -> syn::Result<Self> {
        let mut options = WorkflowOptions::default();
        syn::meta::parser(|meta| options.parse_one(meta)).parse2(args)?;
        if let (Some(span), None) = (options.run_immediately, options.every) {
            return Err(syn::Error::new(
                span,
                "`run_immediately` goes with a schedule: `#[workflow(every = \"30s\", run_immediately)]`",
            ));
        }
        Ok(options)
    }

    fn parse_one(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        let word = path_word(&meta.path);
        let duplicate =
            |meta: &ParseNestedMeta<'_>| meta.error(format!("duplicate option `{word}`"));
        match word.as_str() {
            "name" | "description" => {
                let slot = if word == "name" {
                    &mut self.name
                } else {
                    &mut self.description
                };
                if slot.is_some() {
                    return Err(duplicate(&meta));
                }
                let value: LitStr = meta.value()?.parse()?;
                if value.value().trim().is_empty() {
                    return Err(syn::Error::new(
                        value.span(),
                        format!("the workflow's {word} cannot be empty"),
                    ));
                }
                *slot = Some(value);
            }
            "crate" => {
                if self.krate.is_some() {
                    return Err(duplicate(&meta));
                }
                let value = meta.value()?;
                self.krate = Some(if value.peek(LitStr) {
                    value.parse::<LitStr>()?.parse()?
                } else {
                    value.call(Path::parse_mod_style)?
                });
            }
            "every" => {
                if self.every.is_some() {
                    return Err(duplicate(&meta));
                }
                self.every = Some(duration::parse(&meta.value()?.parse()?)?);
            }
            "run_immediately" => {
                if self.run_immediately.is_some() {
                    return Err(duplicate(&meta));
                }
                self.run_immediately = Some(span_of(&meta.path));
            }
            "handlers" => {
                if self.handlers.is_some() {
                    return Err(duplicate(&meta));
                }
                let content;
                syn::parenthesized!(content in meta.input);
                let pairs = content.parse_terminated(
                    |input: syn::parse::ParseStream<'_>| {
                        let request: syn::Type = input.parse()?;
                        input.parse::<syn::Token![=>]>()?;
                        let response: syn::Type = input.parse()?;
                        Ok((request, response))
                    },
                    syn::Token![,],
                )?;
                self.handlers = Some(pairs.into_iter().collect());
            }
            _ => {
                return Err(meta.error(format!(
                    "unknown workflow option `{word}`; expected one of: name, description, crate, \
                     every, run_immediately, handlers"
                )));
            }
        }
        Ok(())
    }
}

fn path_word(path: &Path) -> String {
    match path.get_ident() {
        Some(ident) => ident.to_string(),
        None => quote::quote!(#path).to_string().replace(' ', ""),
    }
}

fn span_of(path: &Path) -> Span {
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
