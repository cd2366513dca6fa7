//! `#[step]` on a free function: the function keeps its name and
//! signature; its body runs inside a recorder for the active context.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::model::FreeStep;

pub(crate) fn function(model: &FreeStep) -> TokenStream {
    let krate = &model.krate;
    let syn::ItemFn {
        attrs,
        vis,
        sig,
        block,
        ..
    } = &model.item;
    let kind = format_ident!("{}", model.kind.variant());
    let title = &model.title;
    let method = sig.ident.to_string();
    let input = sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            syn::FnArg::Typed(pat) => Some(super::workflow::type_string(&pat.ty)),
            syn::FnArg::Receiver(_) => None,
        })
        .collect::<Vec<_>>()
        .join(", ");
    // As for workflow steps: a fallible step's output is its `Ok` type.
    let ok = match &model.ret {
        syn::Type::Path(path) if model.fallible => path
            .path
            .segments
            .last()
            .and_then(|last| match &last.arguments {
                syn::PathArguments::AngleBracketed(args) => args.args.first(),
                _ => None,
            })
            .and_then(|first| match first {
                syn::GenericArgument::Type(ty) => Some(ty),
                _ => None,
            }),
        _ => None,
    };
    let output = super::workflow::type_string(ok.unwrap_or(&model.ret));
    let is_async = sig.asyncness.is_some();
    let fallible = model.fallible;
    let ret = &model.ret;
    let outcome = if model.fallible {
        quote!(#krate::__private::result_outcome)
    } else {
        quote!(#krate::__private::plain_outcome)
    };
    let probes = model.params.iter().map(|param| match param {
        Some(name) => quote!((&&#krate::__private::Probe(&#name)).describe()),
        None => quote!(::core::option::Option::Some("_".to_owned())),
    });
    let capture = quote! {
        let __input = __step.capture(|| {
            use #krate::__private::{Describe as _, DescribeNothing as _};
            #krate::__private::join_described([#(#probes),*])
        });
    };
    let describe = quote! {
        |__out| {
            use #krate::__private::{Describe as _, DescribeNothing as _};
            (&&#krate::__private::Probe(__out)).describe()
        }
    };
    let run = if sig.asyncness.is_some() {
        quote! {
            __step
                .run_async(
                    __input,
                    #outcome,
                    #krate::__private::typed_future::<#ret, _>(async move #block),
                    #describe,
                )
                .await
        }
    } else {
        quote!(__step.run(__input, #outcome, move || -> #ret #block, #describe))
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            static __STEP: #krate::StepMeta =
                #krate::StepMeta::new(#krate::StepKind::#kind, #title, #method)
                    .input(#input)
                    .output(#output)
                    .is_async(#is_async)
                    .fallible(#fallible);
            let __step = #krate::__private::FreeStep::enter(&__STEP);
            #capture
            #run
        }
    }
}
