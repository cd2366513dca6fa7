//! On a mistake, `#[workflow]` still implements `WorkflowDefinition`, with
//! a body that never runs: code that names the workflow (`run`,
//! `context()`, `Runner::register`) keeps compiling, so one mistake gives
//! one message (thiserror-impl's `fallback.rs` does the same for `Error`).

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ItemImpl, Path, Type};

use crate::model::Workflow;

/// The stub impl, or nothing for an impl block no impl can be written for
/// (a trait impl, a borrowing workflow).
pub(crate) fn definition(
    item: &ItemImpl,
    model: Option<&Workflow>,
    krate: Option<Path>,
    name: Option<String>,
    durable: bool,
) -> TokenStream {
    if item.trait_.is_some() || item.generics.lifetimes().next().is_some() {
        return TokenStream::new();
    }
    let self_ty = &item.self_ty;
    let generics = crate::model::impl_generics(&item.generics, self_ty);
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let krate = model
        .map(|m| m.krate.clone())
        .or(krate)
        .unwrap_or_else(|| syn::parse_quote!(::workflow_runtime));
    let name = model
        .map(|m| m.name.clone())
        .or(name)
        .unwrap_or_else(|| quote!(#self_ty).to_string());
    // With the steps understood, the real input and output types, so calls
    // of `run` type-check; otherwise `()`.
    let unit: Type = syn::parse_quote!(());
    let (input, output) = model.map_or((unit.clone(), unit), super::workflow::io_types);
    let private = quote!(#krate::__private);
    // A durable workflow's stub is durable too, so `Runner::start` and
    // `W::ID` keep compiling.
    let durable = durable.then(|| {
        quote! {
            impl #impl_generics #private::Durable for #self_ty #where_clause {
                const FINGERPRINT: &'static str = "";
                const INPUT: #private::ValueCodec<#input> = #private::ValueCodec::unreachable();
                const OUTPUT: #private::ValueCodec<#output> = #private::ValueCodec::unreachable();
                type Codecs = ();
                const CODECS: () = ();
            }
        }
    });
    quote! {
        impl #impl_generics #krate::WorkflowDefinition for #self_ty #where_clause {
            type Input = #input;
            type Output = #output;
            const NAME: &'static str = #name;
            const STEPS: &'static [#krate::StepMeta] = &[];
            fn run<'a>(
                &'a self,
                _: &'a #krate::WorkflowContext,
                _: Self::Input,
            ) -> impl #krate::__private::Future<
                Output = #krate::__private::Result<Self::Output, #krate::WorkflowError>,
            > + ::core::marker::Send + 'a {
                async { ::core::unreachable!("`#[workflow]` reported an error at compile time") }
            }
        }
        #durable
    }
}
