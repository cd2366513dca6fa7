//! `#[workflow(durable)]`: the `Durable` impl (fingerprint, version, the
//! codecs of the input and of every journaled step's output) and the links
//! of journaled steps.
//!
//! Each codec comes from a check trait local to the `Durable` impl, named
//! after the step (`ChargeSerialize`) and implemented only for serde
//! types; the use is spanned on the step's own return type, so a type the
//! journal cannot store is one error there, naming the step and the trait.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Type};

use super::checks::{self, CheckNames, InputCheck};
use super::workflow::type_string;
use crate::model::{Input, Output, Step, Workflow};

/// The slot of each step's codec in `CODECS`, `None` for steps that are
/// not journaled.
pub(crate) fn slots(model: &Workflow) -> Vec<Option<usize>> {
    let mut next = 0;
    model
        .steps
        .iter()
        .map(|step| {
            step.journaled().then(|| {
                next += 1;
                next - 1
            })
        })
        .collect()
}

/// `impl Durable for W`.
pub(crate) fn durable_impl(
    model: &Workflow,
    names: &mut CheckNames,
    input_ty: &Type,
    output_ty: &Type,
) -> TokenStream {
    let krate = &model.krate;
    let self_ty = &model.self_ty;
    let generics = crate::model::impl_generics(&model.generics, self_ty);
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let private = quote!(#krate::__private);
    let workflow = &model.name;

    let first = &model.steps[0];
    let input_span = first.input.ty().map_or_else(Span::call_site, Spanned::span);
    let what = format!(
        "durable workflow \"{workflow}\" takes `{{Self}}` (the input of step \"{}\")",
        first.title
    );
    let (input_items, input_codec) =
        codec(first, "Input", input_ty, input_span, &what, names, krate);

    let unit: Type = syn::parse_quote!(());
    let mut items = Vec::new();
    let mut codecs = Vec::new();
    let mut types = Vec::new();
    for step in model.steps.iter().filter(|step| step.journaled()) {
        let (ty, span) = match &step.output {
            Output::Unit => (&unit, Span::call_site()),
            Output::Value(ty) | Output::Fallible { ok: ty, .. } => (ty, ty.span()),
        };
        let what = format!(
            "step \"{}\" of durable workflow \"{workflow}\" returns `{{Self}}`",
            step.title
        );
        let (item, expr) = codec(step, "Output", ty, span, &what, names, krate);
        items.push(item);
        codecs.push(expr);
        types.push(quote!(#private::ValueCodec<#ty>));
    }
    let last = slots(model)
        .into_iter()
        .flatten()
        .last()
        .unwrap_or_default();
    let last = syn::Index::from(last);

    let fingerprint = fingerprint(model);
    let version = match model.durable.as_ref().and_then(|d| d.version.as_deref()) {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    };
    quote! {
        impl #impl_generics #private::Durable for #self_ty #where_clause {
            const FINGERPRINT: &'static str = #fingerprint;
            const VERSION: ::core::option::Option<&'static str> = #version;
            const INPUT: #private::ValueCodec<#input_ty> = {
                #input_items
                #input_codec
            };
            const OUTPUT: #private::ValueCodec<#output_ty> =
                <Self as #private::Durable>::CODECS.#last;
            type Codecs = (#(#types,)*);
            const CODECS: Self::Codecs = {
                #(#items)*
                (#(#codecs,)*)
            };
        }
    }
}

/// The two check traits for `ty` (one per serde trait, so the error
/// names the missing one) and the codec they make, spanned on `span`.
fn codec(
    step: &Step,
    suffix: &str,
    ty: &Type,
    span: Span,
    what: &str,
    names: &mut CheckNames,
    krate: &syn::Path,
) -> (TokenStream, TokenStream) {
    let private = quote!(#krate::__private);
    let ser = names.name(step, &format!("{suffix}Serialize"));
    let de = names.name(step, &format!("{suffix}Deserialize"));
    let label = "durable runs journal this value";
    let note = "derive `serde::Serialize` and `serde::Deserialize` for `{Self}`";
    let ser_message = format!("{what}, which is not `Serialize`");
    let de_message = format!("{what}, which is not `Deserialize`");
    let items = quote! {
        #[diagnostic::on_unimplemented(message = #ser_message, label = #label, note = #note)]
        trait #ser: ::core::marker::Sized {
            const ENCODE: #private::EncodeFn<Self>;
        }
        #[diagnostic::do_not_recommend]
        impl<T: #private::serde::Serialize> #ser for T {
            const ENCODE: #private::EncodeFn<T> = #private::encode::<T>;
        }
        #[diagnostic::on_unimplemented(message = #de_message, label = #label, note = #note)]
        trait #de: ::core::marker::Sized {
            const DECODE: #private::DecodeFn<Self>;
        }
        #[diagnostic::do_not_recommend]
        impl<T: #private::serde::de::DeserializeOwned> #de for T {
            const DECODE: #private::DecodeFn<T> = #private::decode::<T>;
        }
    };
    let ser = Ident::new(&ser.to_string(), span);
    let de = Ident::new(&de.to_string(), span);
    let expr = quote_spanned! {span=>
        #private::ValueCodec::new(<#ty as #ser>::ENCODE, <#ty as #de>::DECODE)
    };
    (items, expr)
}

/// A hash of what a journal depends on: the workflow's name, version
/// label, and each step's kind, title, method, types and extra
/// parameters. FNV-1a, so it is the same on every build. Compensations
/// are left out: their rows are keyed by their step's place, and a fixed
/// refund should reach the runs in flight, not park them.
pub(crate) fn fingerprint(model: &Workflow) -> String {
    let mut text = format!("{}\n", model.name);
    if let Some(version) = model.durable.as_ref().and_then(|d| d.version.as_deref()) {
        text.push_str(version);
    }
    for step in &model.steps {
        let input = step.input.ty().map(type_string).unwrap_or_default();
        let output = match &step.output {
            Output::Unit => String::new(),
            Output::Value(ty) => type_string(ty),
            Output::Fallible { full, .. } => type_string(full),
        };
        let tx = step.tx.as_ref().map(type_string).unwrap_or_default();
        text.push_str(&format!(
            "\n{}|{}|{}|{input}|{output}|{}|{tx}",
            step.kind.keyword(),
            step.title,
            step.method,
            step.step_ctx,
        ));
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// One journaled step's link: `.journaled(..)`, or `.transacted(..)` for a
/// transactional one, on the chain so far (`Workflow::new(ctx)` first).
pub(crate) fn link(
    index: usize,
    slot: usize,
    step: &Step,
    check: Option<&InputCheck>,
    error_check: Option<&Ident>,
    krate: &syn::Path,
) -> TokenStream {
    let private = quote!(#krate::__private);
    let value = format_ident!("value");
    // The first step takes the workflow's input from the closure (a copy
    // per attempt when retried); later ones take the chain's value.
    let (param, prelude, arg) = match (&step.input, index) {
        (Input::Nothing, 0) => (quote!(()), None, None),
        (Input::Nothing, _) => (quote!(_), None, None),
        (_, 0) if step.may_run_again() => (
            quote!(()),
            Some(quote! {
                let #value = {
                    use #private::{Again as _, AgainNever as _};
                    (&&#private::Probe(&input)).again()
                };
            }),
            Some(quote!(#value)),
        ),
        (_, 0) => (
            quote!(()),
            Some(quote!(let #value = input;)),
            Some(quote!(#value)),
        ),
        _ => (
            quote!(#value),
            None,
            Some(checks::pass(step, check, &value)),
        ),
    };
    let step_pat = if step.step_ctx {
        quote!(step)
    } else {
        quote!(_)
    };
    let mut args = Vec::new();
    if step.workflow_ctx {
        args.push(quote!(ctx));
    }
    if step.step_ctx {
        args.push(quote!(&step));
    }
    if step.tx.is_some() {
        args.push(quote!(&mut tx));
    }
    args.extend(arg);
    let method = &step.method;
    let mut call = if step.has_receiver {
        quote!(self.#method(#(#args),*))
    } else {
        quote!(Self::#method(#(#args),*))
    };
    if step.is_async {
        call = quote!(#call.await);
    }
    let result = match error_check {
        Some(check) => checks::map_error(step, check, call),
        None => quote!(#private::Result::Ok(#call)),
    };
    let kind = format_ident!("{}", step.kind.variant());
    let title = &step.title;
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    let slot = syn::Index::from(slot);
    let place = quote!(#private::Place { index: #index, title: #title });
    let start = if index == 0 {
        quote!(#private::Workflow::new(ctx))
    } else {
        TokenStream::new()
    };
    // A closure that owns the workflow's input can run once; every other
    // one is `Fn`, which a retry needs (the verb's bound makes the kind).
    let once = if index == 0 && !step.may_run_again() {
        "_once"
    } else {
        ""
    };
    let journaled = format_ident!("journaled{}", once);
    let transacted = format_ident!("transacted{}", once);
    match &step.tx {
        None => quote! {
            #start.#journaled(
                #krate::StepKind::#kind,
                #place,
                <Self as #private::Durable>::CODECS.#slot,
                move |#step_pat, #param| {
                    #prelude
                    async move { #result }
                },
            )
        },
        Some(tx) => quote! {
            #start.#transacted::<#tx, _, _, _>(
                #krate::StepKind::#kind,
                #place,
                <Self as #private::Durable>::CODECS.#slot,
                move |#step_pat, mut tx: #private::Held<#tx>, #param| {
                    #prelude
                    async move {
                        let result = #result;
                        (tx, result)
                    }
                },
            )
        },
    }
}
