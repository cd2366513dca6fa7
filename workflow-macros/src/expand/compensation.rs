//! `#[step(compensate = method)]`: the chain's `.compensate(..)` after the
//! step and its behaviors, and the checks beside it, each naming the step
//! and the compensation: the step's output is kept for it (so `Clone`),
//! the compensation takes that output, and its error can become a
//! workflow error.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Type};

use super::behaviors::behavior_value;
use super::checks::{CheckNames, must_clone};
use crate::model::{Compensation, Output, Step};

/// Where a durable workflow journals a compensation: its step's index.
pub(crate) struct Journaled {
    pub(crate) index: u32,
}

/// The link that gives `step` its compensation, with the checks it needs
/// pushed to `items`; nothing for a step without one.
pub(crate) fn link(
    step: &Step,
    names: &mut CheckNames,
    krate: &syn::Path,
    items: &mut Vec<TokenStream>,
    journaled: Option<Journaled>,
) -> TokenStream {
    let Some(compensation) = &step.compensation else {
        return TokenStream::new();
    };
    let unit: Type = syn::parse_quote!(());
    let (output, output_span) = match &step.output {
        Output::Unit => (&unit, Span::call_site()),
        Output::Value(ty) | Output::Fallible { ok: ty, .. } => (ty, ty.span()),
    };
    items.push(clone_check(step, compensation, output, output_span, names));
    let value = format_ident!("value");
    let arg = match &compensation.input {
        Some(ty) => {
            let check = names.name_of(&compensation.method, "Input");
            items.push(input_check(step, compensation, &check));
            let span = ty.span();
            let check = Ident::new(&check.to_string(), span);
            quote_spanned!(span=> <_ as #check<#ty>>::checked(#value))
        }
        None => TokenStream::new(),
    };
    let method = &compensation.method;
    let step_arg = format_ident!("step");
    let args = if compensation.step_ctx {
        quote!(&#step_arg, #arg)
    } else {
        arg
    };
    let mut call = if compensation.has_receiver {
        quote!(self.#method(#args))
    } else {
        quote!(Self::#method(#args))
    };
    if compensation.is_async {
        call = quote!(#call.await);
    }
    let private = quote!(#krate::__private);
    let result = match &compensation.fallible {
        Some(full) => {
            let check = names.name_of(&compensation.method, "Result");
            items.push(error_check(compensation, &check, krate));
            let span = full.span();
            let check = Ident::new(&check.to_string(), span);
            quote_spanned!(span=> <_ as #check>::checked(#call))
        }
        None => quote! {{
            #call;
            #private::Result::<(), #private::StepError>::Ok(())
        }},
    };
    // With no input, the value is still handed over (and dropped).
    let param = match compensation.input {
        Some(_) => quote!(#value),
        None => quote!(_),
    };
    let title = &compensation.title;
    let undo = match journaled {
        None => quote!(#private::Undo::new(move |#param| async move { #result })),
        Some(Journaled { index }) => {
            // A journaled compensation's body gets its `StepCtx`, whether
            // it asks for it or not.
            let step = if compensation.step_ctx {
                quote!(#step_arg)
            } else {
                quote!(_)
            };
            quote! {
                #private::JournaledUndo::new(
                    ctx,
                    #private::Place { index: #index, title: #title },
                    move |#step, #param| async move { #result },
                )
            }
        }
    };
    // `Clone::clone` when the output is `Clone`; otherwise the check
    // above is the one error, and this compiles regardless.
    let keep = quote! {{
        use #private::{Keep as _, KeepNever as _};
        (&&#private::KeepProbe::<#output>::default()).keeper()
    }};
    let compensate = quote!(.compensate_by(#title, #undo, #keep));
    let behaviors = compensation.behaviors.iter().map(|behavior| {
        let value = behavior_value(behavior, krate);
        quote!(.compensation_with(#value))
    });
    quote!(#compensate #(#behaviors)*)
}

/// The step's output is kept for its compensation: one error on the
/// output type when it cannot be copied.
fn clone_check(
    step: &Step,
    compensation: &Compensation,
    output: &Type,
    span: Span,
    names: &mut CheckNames,
) -> TokenStream {
    let trait_name = names.name(step, "Kept");
    let message = format!(
        "step \"{}\" is undone by compensation \"{}\", which gets a copy of its output: \
         `{{Self}}` must be `Clone`",
        step.title, compensation.title
    );
    let label = "this step's output is `{Self}`, which is not `Clone`";
    let note = "derive or implement `Clone` for `{Self}`, or return an `Arc` of it";
    must_clone(
        &trait_name,
        &message,
        label,
        note,
        quote_spanned!(span=> #output),
    )
}

/// The compensation takes what its step produces.
fn input_check(step: &Step, compensation: &Compensation, trait_name: &Ident) -> TokenStream {
    let message = format!(
        "compensation \"{}\" takes `{{T}}`, but step \"{}\", which it undoes, produces `{{Self}}`",
        compensation.title, step.title
    );
    let label = format!("expected `{{Self}}`, the output of step \"{}\"", step.title);
    let note = "a compensation takes the output of the step it undoes (the `Ok` type of a \
                fallible step)";
    quote! {
        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        trait #trait_name<T> {
            fn checked(self) -> T;
        }
        impl<T> #trait_name<T> for T {
            fn checked(self) -> T { self }
        }
    }
}

/// The compensation's error can become a workflow error.
fn error_check(compensation: &Compensation, trait_name: &Ident, krate: &syn::Path) -> TokenStream {
    let message = format!(
        "compensation \"{}\" returns `{{Self}}`, whose error cannot become a workflow error",
        compensation.title
    );
    let label = "the error type must implement `std::error::Error + Send + Sync + 'static`";
    quote! {
        #[diagnostic::on_unimplemented(message = #message, label = #label)]
        trait #trait_name {
            fn checked(self) -> #krate::__private::Result<(), #krate::__private::StepError>;
        }
        #[diagnostic::do_not_recommend]
        impl<E> #trait_name for #krate::__private::Result<(), E>
        where
            E: ::core::convert::Into<#krate::__private::StepError>,
        {
            fn checked(self) -> #krate::__private::Result<(), #krate::__private::StepError> {
                self.map_err(::core::convert::Into::into)
            }
        }
    }
}
