//! The hidden compile-time checks between steps. Each is a tiny trait local
//! to the generated `run`, implemented only for the right type, whose
//! `#[diagnostic::on_unimplemented]` message names both steps; the call that
//! needs it is spanned on the user's own type, so the error lands there.

use proc_macro2::TokenStream;
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
    // `Self` is the produced type and `T` the taken one. The call site leaves
    // `Self` to inference from the value, so the compiler cannot settle on
    // the lone impl early and report a bare type mismatch instead.
    let message = format!(
        "step \"{}\" takes `{{T}}`, but step \"{}\" produces `{{Self}}`",
        step.title, producer.title
    );
    let label = format!(
        "expected `{{Self}}`, the output of step \"{}\"",
        producer.title
    );
    let note = "each step takes the previous step's output (the `Ok` type of a fallible \
                step); `then` and `finally` steps pass the value on unchanged";
    let item = quote! {
        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        trait #trait_name<T> {
            fn __pass(self) -> T;
            fn __pass_ref(&self) -> &T;
        }
        impl<T> #trait_name<T> for T {
            fn __pass(self) -> T { self }
            fn __pass_ref(&self) -> &T { self }
        }
    };
    InputCheck { trait_name, item }
}

/// The argument expression handing `value` to the step, checked.
pub(crate) fn pass(step: &Step, check: Option<&InputCheck>, value: &Ident) -> TokenStream {
    let (Some(ty), Some(check)) = (step.input.ty(), check) else {
        return quote!(#value);
    };
    // Spanned on the user's parameter type, so the error lands there.
    let span = ty.span();
    let name = Ident::new(&check.trait_name.to_string(), span);
    match step.input {
        Input::Value(_) => quote_spanned!(span=> <_ as #name<#ty>>::__pass(#value)),
        Input::Ref(_) => quote_spanned!(span=> <_ as #name<#ty>>::__pass_ref(#value)),
        Input::Outcome(_) => {
            quote_spanned!(span=> #value.map(|v| <_ as #name<#ty>>::__pass_ref(v)))
        }
        Input::Nothing => quote!(#value),
    }
}

/// The check that a fallible step's error can become a workflow error.
/// Generic over the `Ok` type rather than naming it as an associated type,
/// so a failed check leaves nothing unknown to cause a second error.
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
        trait #trait_name<T> {
            fn __into(self) -> #krate::__private::Result<T, #krate::__private::StepError>;
        }
        #[diagnostic::do_not_recommend]
        impl<T, E> #trait_name<T> for #krate::__private::Result<T, E>
        where
            E: ::core::convert::Into<#krate::__private::StepError>,
        {
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
    let Output::Fallible { ok, full } = &step.output else {
        return call;
    };
    let span = full.span();
    let check = Ident::new(&check.to_string(), span);
    quote_spanned!(span=> <_ as #check<#ok>>::__into(#call))
}
