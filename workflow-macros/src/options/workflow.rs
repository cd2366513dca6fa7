//! `#[workflow(...)]`: name, description, crate path, schedule (`every`
//! or `cron`), handlers, durability.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{LitStr, Path};

use super::behavior::{BehaviorOption, parse_behavior};
use super::{path_word, span_of};
use crate::duration;

/// What `#[workflow(...)]` said.
#[derive(Default)]
pub(crate) struct WorkflowOptions {
    pub(crate) name: Option<LitStr>,
    pub(crate) description: Option<LitStr>,
    pub(crate) krate: Option<Path>,
    pub(crate) every: Option<Duration>,
    /// `cron = "0 */5 * * * *"`, checked while parsing.
    pub(crate) cron: Option<LitStr>,
    /// `zone = "Europe/Paris"`: the cron expression's time zone.
    pub(crate) zone: Option<LitStr>,
    /// The span of `run_immediately`, when given.
    pub(crate) run_immediately: Option<Span>,
    /// `catch_up = "latest"` (or `"skip"`, the default): the span, and
    /// whether it is `latest`.
    pub(crate) catch_up: Option<(Span, bool)>,
    /// `handlers(Request => Response, ...)`, when given.
    pub(crate) handlers: Option<Vec<(syn::Type, syn::Type)>>,
    /// `durable` or `durable = "v2"`: the span, and the version label.
    pub(crate) durable: Option<(Span, Option<LitStr>)>,
    /// `step_timeout = "30s"`: every step's time limit, by default.
    pub(crate) step_timeout: Option<Duration>,
    /// `continue_on_error` (or `= true` / `= false`), when given.
    pub(crate) continue_on_error: Option<bool>,
    /// Behaviors around every step, outermost first, as written:
    /// `timeout = ".."`, `retry(..)`, `behaviors(Tracing, Metrics)`.
    pub(crate) behaviors: Vec<WorkflowBehavior>,
}

/// A behavior `#[workflow(...)]` puts around every step.
pub(crate) enum WorkflowBehavior {
    /// `timeout` or `retry`, as a step writes them.
    Builtin(BehaviorOption),
    /// `behaviors(..)`: values that are behaviors (`Tracing`, `Metrics`,
    /// `MyBehavior::new(..)`).
    Values(Vec<syn::Expr>),
}

impl WorkflowOptions {
    pub(crate) fn parse(args: TokenStream) -> syn::Result<Self> {
        let mut options = WorkflowOptions::default();
        syn::meta::parser(|meta| options.parse_one(meta)).parse2(args)?;
        let scheduled = options.every.is_some() || options.cron.is_some();
        if let (Some(cron), Some(_)) = (&options.cron, options.every) {
            return Err(syn::Error::new(
                cron.span(),
                "a schedule is `every = \"..\"` or `cron = \"..\"`, not both",
            ));
        }
        if let (Some(zone), None) = (&options.zone, &options.cron) {
            return Err(syn::Error::new(
                zone.span(),
                "`zone` goes with a cron schedule: `#[workflow(cron = \"0 0 9 * * *\", zone = \"Europe/Paris\")]`",
            ));
        }
        if let (Some(cron), false) = (&options.cron, cfg!(feature = "cron")) {
            return Err(syn::Error::new(
                cron.span(),
                "cron schedules need the `cron` feature of workflow-runtime",
            ));
        }
        #[cfg(feature = "cron")]
        if let Some(cron) = &options.cron {
            crate::cron::check(cron, options.zone.as_ref())?;
        }
        if let (Some((span, _)), false) = (options.catch_up, scheduled) {
            return Err(syn::Error::new(
                span,
                "`catch_up` goes with a schedule: `#[workflow(every = \"30s\", catch_up = \"latest\")]`",
            ));
        }
        if let (Some(span), false) = (options.run_immediately, scheduled) {
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
            "cron" | "zone" => {
                let slot = if word == "cron" {
                    &mut self.cron
                } else {
                    &mut self.zone
                };
                if slot.is_some() {
                    return Err(duplicate(&meta));
                }
                *slot = Some(meta.value()?.parse()?);
            }
            "catch_up" => {
                if self.catch_up.is_some() {
                    return Err(duplicate(&meta));
                }
                let value: LitStr = meta.value()?.parse()?;
                let latest = match value.value().as_str() {
                    "skip" => false,
                    "latest" => true,
                    other => {
                        return Err(syn::Error::new(
                            value.span(),
                            format!(
                                "unknown catch-up policy \"{other}\"; expected \"skip\" or \"latest\""
                            ),
                        ));
                    }
                };
                self.catch_up = Some((span_of(&meta.path), latest));
            }
            "run_immediately" => {
                if self.run_immediately.is_some() {
                    return Err(duplicate(&meta));
                }
                self.run_immediately = Some(span_of(&meta.path));
            }
            "durable" => {
                if self.durable.is_some() {
                    return Err(duplicate(&meta));
                }
                let version = if meta.input.peek(syn::Token![=]) {
                    let version: LitStr = meta.value()?.parse()?;
                    if version.value().trim().is_empty() {
                        return Err(syn::Error::new(
                            version.span(),
                            "a durable workflow's version label cannot be empty; leave it out \
                             (`durable`) or name it (`durable = \"v2\"`)",
                        ));
                    }
                    Some(version)
                } else {
                    None
                };
                self.durable = Some((span_of(&meta.path), version));
            }
            "step_timeout" => {
                if self.step_timeout.is_some() {
                    return Err(duplicate(&meta));
                }
                self.step_timeout = Some(duration::parse(&meta.value()?.parse()?)?);
            }
            "continue_on_error" => {
                if self.continue_on_error.is_some() {
                    return Err(duplicate(&meta));
                }
                let value = if meta.input.peek(syn::Token![=]) {
                    meta.value()?.parse::<syn::LitBool>()?.value
                } else {
                    true
                };
                self.continue_on_error = Some(value);
            }
            "circuit_breaker" => {
                return Err(meta.error(
                    "a circuit breaker guards one service: put `circuit_breaker(..)` on the steps \
                     that call it",
                ));
            }
            "timeout" | "retry" => {
                let seen = self.behaviors.iter().any(|b| match b {
                    WorkflowBehavior::Builtin(b) => b.keyword() == word,
                    WorkflowBehavior::Values(_) => false,
                });
                if seen {
                    return Err(duplicate(&meta));
                }
                if let Some(behavior) = parse_behavior(&word, &meta)? {
                    self.behaviors.push(WorkflowBehavior::Builtin(behavior));
                }
            }
            "behaviors" => {
                if self
                    .behaviors
                    .iter()
                    .any(|b| matches!(b, WorkflowBehavior::Values(_)))
                {
                    return Err(duplicate(&meta));
                }
                let content;
                syn::parenthesized!(content in meta.input);
                let values = content
                    .parse_terminated(<syn::Expr as syn::parse::Parse>::parse, syn::Token![,])?;
                if values.is_empty() {
                    return Err(meta.error(
                        "`behaviors(..)` lists behavior values: `behaviors(Tracing, Metrics)`",
                    ));
                }
                self.behaviors
                    .push(WorkflowBehavior::Values(values.into_iter().collect()));
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
                     every, cron, zone, run_immediately, catch_up, handlers, durable, step_timeout, \
                     continue_on_error, timeout, retry, behaviors"
                )));
            }
        }
        Ok(())
    }
}
