//! Per-step behaviors from `#[step(...)]`: chain calls after the step's
//! verb, outermost first as written, each spanned on its option so a type
//! error (an input that is not `Clone` under `retry`) lands there.

use std::time::Duration;

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use crate::model::Step;
use crate::options::BehaviorOption;

fn duration(d: Duration) -> TokenStream {
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    quote!(::core::time::Duration::from_nanos(#nanos))
}

fn option<T: quote::ToTokens>(value: Option<T>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

/// The definition's `context()` when `#[workflow(...)]` sets options or
/// `behaviors(..)` for every step: the default context, the definition's
/// option settings (applied on top of a runner's defaults), then the
/// behaviors, outermost first.
pub(crate) fn workflow_context(model: &crate::model::Workflow) -> Option<TokenStream> {
    let krate = &model.krate;
    let mut settings = Vec::new();
    if let Some(limit) = model.step_timeout {
        let limit = duration(limit);
        settings.push(quote!(.step_timeout(#limit)));
    }
    if let Some(yes) = model.continue_on_error {
        settings.push(quote!(.continue_on_error(#yes)));
    }
    if settings.is_empty() && model.behaviors.is_empty() {
        return None;
    }
    let refine =
        (!settings.is_empty()).then(|| quote!(.__refine_options(|options| options #(#settings)*)));
    let behaviors = &model.behaviors;
    Some(quote! {
        fn context() -> #krate::ContextBuilder {
            #krate::__private::default_context::<Self>()
                #refine
                #(.behavior(#behaviors))*
        }
    })
}

/// Applies the step's behaviors to `chain`, giving the chain after.
/// Breakers come by name from the run's context, which shares them across
/// runs of one runner.
pub(crate) fn apply(
    step: &Step,
    (held, durable): (bool, bool),
    krate: &syn::Path,
    mut chain: TokenStream,
) -> TokenStream {
    // `replayable` without a retry of its own: the step's body may be run
    // again by the context's behaviors. (A retry makes it so already.)
    if step.replayable && !step.retries() {
        chain = quote! {{
            use #krate::__private::{RetryFallback as _, RetryWithReplay as _};
            #krate::__private::ReplayProbe::new(#chain).__replayable()
        }};
    } else if step.replays_if_clone(held).is_some() {
        // Neither: a type-wide retry may still run it again when its
        // input is `Clone`, which the probe picks without an error if not.
        // (`run` imports the probe's traits once.)
        chain = quote!(#chain.__probe().__replayable_for_retries());
    }
    for behavior in &step.behaviors {
        let span = behavior.span();
        chain = match behavior {
            BehaviorOption::Retry { .. } => {
                let value = behavior_value(behavior, krate);
                let call = quote_spanned!(span=> __retry);
                quote! {{
                    use #krate::__private::{RetryFallback as _, RetryWithReplay as _};
                    #krate::__private::ReplayProbe::new(#chain).#call(#value)
                }}
            }
            BehaviorOption::Timeout { limit, .. } => {
                let limit = duration(*limit);
                quote_spanned!(span=> #chain.timeout(#limit))
            }
            BehaviorOption::CircuitBreaker { .. } => {
                let value = behavior_value(behavior, krate);
                quote_spanned!(span=> #chain.circuit_breaker(#value))
            }
            BehaviorOption::Values { exprs, .. } => {
                for expr in exprs {
                    let span = syn::spanned::Spanned::span(expr);
                    // A durable step's journal keeps what its body
                    // returned: it takes behaviors that see no value.
                    chain = if durable {
                        quote_spanned!(span=> #chain.with(#expr))
                    } else {
                        // The step hands its value on (`value_behaviors`).
                        quote_spanned!(span=> #chain.__with(#expr))
                    };
                }
                chain
            }
        };
    }
    chain
}

/// A behavior option as a value (`Retry::max_attempts(3)..`): what a
/// step's chain call and a compensation's `.compensation_with(..)` take.
pub(crate) fn behavior_value(behavior: &BehaviorOption, krate: &syn::Path) -> TokenStream {
    let span = behavior.span();
    match behavior {
        BehaviorOption::Retry {
            max,
            backoff,
            max_delay,
            jitter,
            filter,
            ..
        } => {
            let backoff = backoff.map(|d| {
                let d = duration(d);
                quote!(.backoff(#d))
            });
            let max_delay = max_delay.map(|d| {
                let d = duration(d);
                quote!(.max_delay(#d))
            });
            let jitter = jitter.then(|| quote!(.jitter(true)));
            let filter = filter.as_ref().map(|path| quote!(.filter(#path)));
            quote_spanned!(span=> #krate::behavior::Retry::max_attempts(#max) #backoff #max_delay #jitter #filter)
        }
        BehaviorOption::Timeout { limit, .. } => {
            let limit = duration(*limit);
            quote_spanned!(span=> #krate::behavior::Timeout::new(#limit))
        }
        BehaviorOption::CircuitBreaker {
            name,
            failures,
            open_for,
            ..
        } => {
            let failures = option(*failures);
            let open_for = option(open_for.map(duration));
            quote_spanned!(span=> #krate::__private::breaker(ctx, #name, #failures, #open_for))
        }
        // Only a step has `behaviors(..)`, applied one value at a time.
        BehaviorOption::Values { exprs, .. } => quote!(#(#exprs),*),
    }
}
