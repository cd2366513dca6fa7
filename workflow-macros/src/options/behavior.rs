//! Behaviors declared on a step: `retry(..)`, `timeout = ".."`,
//! `circuit_breaker(..)`.

use std::time::Duration;

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::{LitInt, LitStr};

use super::{path_word, span_of};
use crate::duration;

/// A behavior declared on a step (or on a workflow, for each of its steps).
#[derive(Clone)]
pub(crate) enum BehaviorOption {
    Retry {
        span: Span,
        /// The most attempts, the first included (`retries = n` is
        /// `n + 1`).
        max: u32,
        backoff: Option<Duration>,
        max_delay: Option<Duration>,
        jitter: bool,
        /// `filter = path`: a `fn(&StepFailure) -> bool` choosing the
        /// failures worth another attempt.
        filter: Option<syn::Path>,
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
    /// `behaviors(..)` on a step: behavior values, untyped or value
    /// behaviors (`Fallback::to(..)`), in the order written.
    Values {
        span: Span,
        exprs: Vec<syn::Expr>,
    },
}

impl BehaviorOption {
    pub(crate) fn keyword(&self) -> &'static str {
        match self {
            BehaviorOption::Retry { .. } => "retry",
            BehaviorOption::Timeout { .. } => "timeout",
            BehaviorOption::CircuitBreaker { .. } => "circuit_breaker",
            BehaviorOption::Values { .. } => "behaviors",
        }
    }

    pub(crate) fn span(&self) -> Span {
        match self {
            BehaviorOption::Retry { span, .. }
            | BehaviorOption::Timeout { span, .. }
            | BehaviorOption::CircuitBreaker { span, .. }
            | BehaviorOption::Values { span, .. } => *span,
        }
    }
}

/// Reads a behavior option (`retry`, `timeout`, `circuit_breaker`) into
/// `behaviors`, which hold at most one of each: `false` when `word` names
/// none of them.
pub(crate) fn push_behavior(
    behaviors: &mut Vec<BehaviorOption>,
    word: &str,
    meta: &ParseNestedMeta<'_>,
) -> syn::Result<bool> {
    let Some(behavior) = parse_behavior(word, meta)? else {
        return Ok(false);
    };
    if behaviors.iter().any(|b| b.keyword() == behavior.keyword()) {
        return Err(meta.error(format!("duplicate option `{word}`")));
    }
    behaviors.push(behavior);
    Ok(true)
}

pub(crate) fn parse_behavior(
    word: &str,
    meta: &ParseNestedMeta<'_>,
) -> syn::Result<Option<BehaviorOption>> {
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
            // `max_attempts = n` (n in all) or `retries = n` (n after the
            // first): the span of the one given, and the attempt count.
            let mut max: Option<(&'static str, u32)> = None;
            let (mut backoff, mut max_delay, mut jitter) = (None, None, false);
            let mut filter: Option<syn::Path> = None;
            meta.parse_nested_meta(|inner| {
                let key = path_word(&inner.path);
                let seen = match key.as_str() {
                    "max" => {
                        return Err(inner.error(
                            "`max` could mean attempts or retries: say `max_attempts = 3` \
                             (3 attempts in all) or `retries = 3` (3 retries after the first \
                             attempt, 4 in all)",
                        ));
                    }
                    "max_attempts" | "retries" => {
                        if let Some((given, _)) = max
                            && given != key.as_str()
                        {
                            return Err(inner.error(format!(
                                "`{given}` and `{key}` both count attempts: give one"
                            )));
                        }
                        max.is_some()
                    }
                    "backoff" => backoff.is_some(),
                    "max_delay" => max_delay.is_some(),
                    "jitter" => jitter,
                    "filter" => filter.is_some(),
                    _ => {
                        return Err(inner.error(format!(
                            "unknown retry option `{key}`; expected one of: max_attempts, retries, backoff, max_delay, jitter, filter"
                        )));
                    }
                };
                if seen {
                    return Err(inner.error(format!("duplicate option `{key}`")));
                }
                match key.as_str() {
                    "max_attempts" => max = Some(("max_attempts", positive(&inner, "attempts")?)),
                    "retries" => {
                        let retries = positive(&inner, "retries")?;
                        max = Some(("retries", retries.saturating_add(1)));
                    }
                    "backoff" => backoff = Some(duration::parse(&inner.value()?.parse()?)?),
                    "max_delay" => max_delay = Some(duration::parse(&inner.value()?.parse()?)?),
                    "filter" => filter = Some(inner.value()?.parse()?),
                    _ => jitter = true,
                }
                Ok(())
            })?;
            let Some((_, max)) = max else {
                return Err(meta.error(
                    "`retry` needs its count: `retry(max_attempts = 3)` (3 attempts in all) or \
                     `retry(retries = 3)` (3 retries after the first attempt)",
                ));
            };
            BehaviorOption::Retry {
                span,
                max,
                backoff,
                max_delay,
                jitter,
                filter,
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
