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

/// Applies the step's behaviors to `chain`, giving the chain after.
/// Breakers come by name from the run's context, which shares them across
/// runs of one runner.
pub(crate) fn apply(step: &Step, krate: &syn::Path, mut chain: TokenStream) -> TokenStream {
    for behavior in &step.behaviors {
        let span = behavior.span();
        chain = match behavior {
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
                let retry = quote!(#krate::behavior::Retry::max_attempts(#max) #backoff #max_delay #jitter #filter);
                let call = quote_spanned!(span=> __retry);
                quote! {{
                    use #krate::__private::{RetryFallback as _, RetryWithReplay as _};
                    #krate::__private::ReplayProbe::new(#chain).#call(#retry)
                }}
            }
            BehaviorOption::Timeout { limit, .. } => {
                let limit = duration(*limit);
                quote_spanned!(span=> #chain.timeout(#limit))
            }
            BehaviorOption::CircuitBreaker {
                name,
                failures,
                open_for,
                ..
            } => {
                let failures = option(*failures);
                let open_for = option(open_for.map(duration));
                quote_spanned! {span=>
                    #chain.circuit_breaker(#krate::__private::breaker(ctx, #name, #failures, #open_for))
                }
            }
        };
    }
    chain
}
