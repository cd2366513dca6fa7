//! The hidden compile-time checks between steps. Each is a tiny trait local
//! to the generated `run`, implemented only for the right type, whose
//! `#[diagnostic::on_unimplemented]` message names both steps; the call that
//! needs it is spanned on the user's own type, so the error lands there.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;
use syn::spanned::Spanned;

use crate::model::{Input, Output, Step};

/// The check that step `index` takes what the step before produces.
pub(crate) struct InputCheck {
    pub(crate) trait_name: Ident,
    pub(crate) item: TokenStream,
}

pub(crate) fn input_check(index: usize, step: &Step, producer: &Step) -> InputCheck {
    let trait_name = format_ident!("__Step{}Input", index);
    let message = format!(
        "step \"{}\" takes `{{Self}}`, but step \"{}\" produces `{{T}}`",
        step.title, producer.title
    );
    let label = format!(
        "expected `{{T}}` here, the output of step \"{}\"",
        producer.title
    );
    let item = quote! {
        #[diagnostic::on_unimplemented(message = #message, label = #label)]
        trait #trait_name<T>: Sized {
            fn __pass(value: T) -> Self;
            fn __pass_ref(value: &T) -> &Self;
        }
        impl<T> #trait_name<T> for T {
            fn __pass(value: T) -> T { value }
            fn __pass_ref(value: &T) -> &T { value }
        }
    };
    InputCheck { trait_name, item }
}

/// The argument expression handing `value` to the step, checked.
pub(crate) fn pass(step: &Step, check: Option<&InputCheck>, value: &Ident) -> TokenStream {
    let (Some(ty), Some(check)) = (step.input.ty(), check) else {
        return quote!(#value);
    };
    let name = &check.trait_name;
    let span = ty.span();
    match step.input {
        Input::Value(_) => quote_spanned!(span=> <#ty as #name<_>>::__pass(#value)),
        Input::Ref(_) => quote_spanned!(span=> <#ty as #name<_>>::__pass_ref(#value)),
        Input::Outcome(_) => {
            quote_spanned!(span=> #value.map(<#ty as #name<_>>::__pass_ref))
        }
        Input::Nothing => quote!(#value),
    }
}

/// The check that a fallible step's error can become a workflow error.
pub(crate) fn error_check(
    index: usize,
    step: &Step,
    krate: &syn::Path,
) -> Option<(Ident, TokenStream)> {
    let Output::Fallible { .. } = &step.output else {
        return None;
    };
    let trait_name = format_ident!("__Step{}Error", index);
    let message = format!(
        "step \"{}\" returns `{{Self}}`, whose error cannot become a workflow error",
        step.title
    );
    let label = "the error type must implement `std::error::Error + Send + Sync + 'static`";
    let item = quote! {
        #[diagnostic::on_unimplemented(message = #message, label = #label)]
        trait #trait_name {
            type Ok;
            fn __into(self) -> #krate::__private::Result<Self::Ok, #krate::__private::StepError>;
        }
        #[diagnostic::do_not_recommend]
        impl<T, E> #trait_name for #krate::__private::Result<T, E>
        where
            E: ::core::convert::Into<#krate::__private::StepError>,
        {
            type Ok = T;
            fn __into(self) -> #krate::__private::Result<T, #krate::__private::StepError> {
                self.map_err(::core::convert::Into::into)
            }
        }
    };
    Some((trait_name, item))
}

/// Wraps a fallible step's result in its error check, spanned on the
/// step's return type.
pub(crate) fn map_error(step: &Step, check: &Ident, call: TokenStream) -> TokenStream {
    let span = match &step.output {
        Output::Fallible { full, .. } => full.span(),
        _ => Span::call_site(),
    };
    quote_spanned!(span=> #check::__into(#call))
}
