//! `#[workflow]`: the `WorkflowDefinition` impl, whose `run` calls the
//! step methods through the fluent chain's verbs, so a reader of `cargo
//! expand` sees the code they would write by hand. `run` is one `async`
//! body that awaits each step in turn, started from the outcome of the
//! one before, so the run holds one step's future at a time; a workflow
//! with a compensation is one nested chain, which keeps each step's
//! output for the undoing.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Type;

use super::checks::{self, InputCheck};
use crate::model::{Cadence, Input, Output, Step, Workflow};
use crate::options::Kind;

pub(crate) fn definition(model: &Workflow) -> TokenStream {
    let krate = &model.krate;
    let self_ty = &model.self_ty;
    let generics = crate::model::impl_generics(&model.generics, self_ty);
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let name = &model.name;
    // Written only when there is one: the trait's default is `None`, and
    // a `const` item is some hundred thousand instructions of a re-check.
    let description = model.description.as_ref().map(|d| {
        quote!(const DESCRIPTION: ::core::option::Option<&'static str> = ::core::option::Option::Some(#d);)
    });

    let unit: Type = syn::parse_quote!(());
    let input_ty = model.steps[0].input.ty().unwrap_or(&unit).clone();

    let mut items = Vec::new();
    let mut metas = Vec::new();
    let mut handles = Vec::new();
    let mut chain = TokenStream::new();
    let mut current: &Type = &input_ty;
    let mut producer = &model.steps[0];

    // Whether a step is replayable when its input is `Clone`, which the
    // steps' list finds out through `CloneProbe` (and the chain through
    // the probe traits below).
    let mut probes = false;
    // Which of the probe's traits `run` brings into scope.
    let (mut declares, mut retry_probes) = (false, false);
    let mut names = checks::CheckNames::new(&model.steps);
    // The steps' list names its types as a person would, imported in its
    // own block, unless a signature writes one of those names. The
    // qualified paths it writes otherwise are five tokens more each (eight
    // with `__private`), in every step's entry, for the compiler to read
    // and resolve.
    let short = names.unwritten(&["StepKind", "StepMeta", "CloneProbe"]);
    let prefix: &[&syn::Path] = if short {
        &[]
    } else {
        std::slice::from_ref(&krate)
    };
    // `run` names the chain's start, `Workflow`, the same way.
    let run_prefix: &[&syn::Path] = if names.unwritten(&["Workflow"]) {
        &[]
    } else {
        std::slice::from_ref(&krate)
    };
    // Whether `run` names `Workflow`, which it then imports when it may.
    let mut starts = false;
    let slots = match model.durable {
        Some(_) => super::durable::slots(model),
        None => vec![None; model.steps.len()],
    };
    // Each step's future is made from the one before's outcome once that
    // one has ended (`let flow = ….await`), but where a compensation
    // needs the nested chain, which keeps what each earlier step made.
    let straight = model.steps.iter().all(|step| step.compensation.is_none());
    let mut segments = Vec::new();
    for (index, step) in model.steps.iter().enumerate() {
        // A later step of a straight-line run starts from the `flow` the
        // one before handed on.
        if straight && index > 0 {
            segments.push(std::mem::take(&mut chain));
            starts = true;
            chain = quote!(#(#run_prefix::__private::)* Workflow::__after(ctx, flow));
        }
        // A step taking what the one before produces, written the same,
        // cannot mismatch: it needs no check of its own.
        let check = (index > 0 && !checks::written_alike(step.input.ty(), current))
            .then(|| checks::input_check(step, producer, &mut names));
        items.extend(checks::retry_check(step, &mut names));
        let error_check = checks::error_check(step, krate, &mut names);
        if let Some((_, item)) = &error_check {
            items.push(item.clone());
        }
        let link = match slots[index] {
            Some(slot) => super::durable::link(
                index,
                slot,
                step,
                check.as_ref(),
                error_check.as_ref().map(|(n, _)| n),
                krate,
            ),
            None => {
                starts |= index == 0;
                link(
                    index,
                    step,
                    check.as_ref(),
                    error_check.as_ref().map(|(n, _)| n),
                    (krate, run_prefix),
                )
            }
        };
        chain.extend(link);
        // Value behaviors (a fallback, a cache) may see and replace what a
        // step makes, unless it is durable: its journal keeps that.
        let values = slots[index].is_none() && !step.passes_value_on();
        // Every step's body can copy its input for a retry, but a durable
        // workflow's first, which takes the run's input once.
        let held = index > 0 || slots[index].is_none();
        if values && step.behaviors.is_empty() && step.replays_if_clone(held).is_some() {
            // What the arms below give such a step (its value to value
            // behaviors, a replay for a type-wide retry when its input is
            // `Clone`, a test's stand-in), in one wrapper the probe picks.
            declares = true;
            chain = quote!(#chain.__probe().__declared());
        } else {
            if values {
                chain = quote!(#chain.value_behaviors());
            }
            retry_probes |= step.replays_if_clone(held).is_some();
            chain = super::behaviors::apply(step, (held, slots[index].is_some()), krate, chain);
            // A test's override may stand in for a step that makes a
            // value; a durable step's result is journaled, so it takes
            // none.
            if values {
                chain = quote!(#chain.overridable());
            }
        }
        if values {
            // Its typed handle, for a test's `stand_in`: what the step
            // takes in the chain (nothing, for the first) and makes.
            let takes = if index == 0 { &unit } else { current };
            let makes = produces(step, &unit);
            let handle = format_ident!(
                "{}",
                step.method
                    .to_string()
                    .trim_start_matches("r#")
                    .to_uppercase()
            );
            let title = &step.title;
            let doc = if index == 0 {
                format!(
                    "The step \"{title}\", for a test's stand-in (`ContextBuilder::stand_in`), \
                     which takes `&()`: the chain starts from nothing."
                )
            } else {
                format!("The step \"{title}\", for a test's stand-in (`ContextBuilder::stand_in`).")
            };
            handles.push(quote! {
                #[doc = #doc]
                pub const #handle: #krate::StepRef<#takes, #makes> = #krate::StepRef::new(#name, #title);
            });
        }
        let journaled = slots[index].map(|_| super::compensation::Journaled {
            index: u32::try_from(index).unwrap_or(u32::MAX),
        });
        chain.extend(super::compensation::link(
            step, &mut names, krate, &mut items, journaled,
        ));

        let input = step.input.ty().map(type_string).unwrap_or_default();
        // What a value step hands on, for `.produces::<T>()`.
        let typed = (!step.passes_value_on()).then(|| {
            current = produces(step, &unit);
            producer = step;
            current
        });
        let replayable = match step.replays_if_clone(held) {
            Some(Some(ty)) => {
                probes = true;
                quote!(#(#prefix::__private::)* CloneProbe::<#ty>::CLONES)
            }
            // A first step taking nothing: its body is `Fn`.
            Some(None) => quote!(true),
            None => {
                let yes = step.may_run_again();
                quote!(#yes)
            }
        };
        let kind = format_ident!("{}", step.kind.variant());
        let title = &step.title;
        let method = step.method.to_string();
        let output = type_string(current);
        let is_async = step.is_async;
        let fallible = step.output.is_fallible();
        let comma = (index > 0).then(<syn::Token![,]>::default);
        // An option as a repetition, not a piece quoted apart: each token
        // stream spliced into another is more trips through the
        // proc-macro bridge, most of what expanding costs in a debug build.
        let typed = typed.iter();
        metas.push(quote! {
            #comma
            #(#prefix::)* StepMeta::new(#(#prefix::)* StepKind::#kind, #title, #method)
                .input(#input)
                .output(#output)
                .is_async(#is_async)
                .fallible(#fallible)
                .replayable(#replayable)
                #(.produces::<#typed>())*
        });
    }

    let schedule = model.schedule.as_ref().map(|schedule| {
        let cadence = match &schedule.cadence {
            Cadence::Every(every) => {
                let nanos = u64::try_from(every.as_nanos()).unwrap_or(u64::MAX);
                quote!(every(::core::time::Duration::from_nanos(#nanos)))
            }
            // Checked while expanding, with the crate the runtime reads it
            // with: the `expect` never fires.
            Cadence::Cron(expression, None) => {
                quote!(cron(#expression).expect("a cron expression checked while expanding"))
            }
            Cadence::Cron(expression, Some(zone)) => quote!(
                cron_in(#expression, #zone).expect("a cron expression checked while expanding")
            ),
        };
        let immediately = schedule
            .run_immediately
            .then(|| quote!(.run_immediately(true)));
        let catch_up = schedule
            .catch_up_latest
            .then(|| quote!(.catch_up(#krate::host::CatchUp::Latest)));
        quote! {
            fn schedule() -> ::core::option::Option<#krate::host::Schedule> {
                ::core::option::Option::Some(#krate::host::Schedule::#cadence #immediately #catch_up)
            }
        }
    });
    let handlers = (!model.handlers.is_empty()).then(|| {
        let keys = model
            .handlers
            .iter()
            .map(|(req, resp)| quote!(#krate::handlers::HandlerKey::of::<#req, #resp>()));
        quote! {
            fn handlers() -> ::std::vec::Vec<#krate::handlers::HandlerKey> {
                ::std::vec![#(#keys),*]
            }
        }
    });
    // A `finally` step's checked outcome maps through a closure that
    // clippy would rather see as a path; only such a workflow says so.
    let allow_closure = model
        .steps
        .iter()
        .any(|step| matches!(step.input, Input::Outcome(_)))
        .then(|| quote!(#[allow(clippy::redundant_closure)]));
    let unpack = match model.steps[0].input {
        Input::Nothing => quote!(let () = input;),
        _ => TokenStream::new(),
    };
    // A durable step names its codecs where it is made, as constants:
    // nothing is captured for them.
    let durable = model
        .durable
        .as_ref()
        .map(|_| super::durable::durable_impl(model, &mut names, &input_ty, current));
    let context = super::behaviors::workflow_context(model);
    let body = if straight {
        segments.push(chain);
        // One `async` body awaiting each step in turn: the compiler makes
        // it one state machine, each step's future in the room the one
        // before left.
        quote! {
            #krate::__private::straight(ctx, async move {
                #(let flow = #segments.__step().await;)*
                flow
            })
        }
    } else {
        quote!(#chain.result())
    };
    // A test names a step by its handle; a workflow that uses none is
    // not warned about them.
    let handles = (!handles.is_empty()).then(|| {
        let handles = TokenStream::from_iter(handles);
        quote! {
            #[allow(dead_code)]
            impl #impl_generics #self_ty #where_clause {
                #handles
            }
        }
    });
    let metas = TokenStream::from_iter(metas);
    let imports = short.then(|| {
        let probe = probes.then(|| quote!(, __private::{CloneProbe, NotClone as _}));
        quote!(use #krate::{StepKind, StepMeta #probe};)
    });
    let steps = if probes || short {
        let not_clone = (probes && !short).then(|| quote!(use #krate::__private::NotClone as _;));
        quote!({
            #imports
            #not_clone
            &[#metas]
        })
    } else {
        quote!(&[#metas])
    };
    let probe_traits = (declares || retry_probes).then(|| {
        let declare = declares.then(|| quote!(DeclareOnce as _, DeclareReplays as _,));
        let retry = retry_probes.then(|| quote!(RetryFallback as _, RetryWithReplay as _,));
        quote!(#declare IntoProbe as _, #retry)
    });
    let workflow = (starts && run_prefix.is_empty()).then(|| quote!(Workflow,));
    let run_imports = (probe_traits.is_some() || workflow.is_some())
        .then(|| quote!(use #krate::__private::{#probe_traits #workflow};));
    quote! {
        impl #impl_generics #krate::WorkflowDefinition for #self_ty #where_clause {
            type Input = #input_ty;
            type Output = #current;
            const NAME: &'static str = #name;
            #description
            const STEPS: &'static [#krate::StepMeta] = #steps;
            #schedule
            #handlers
            #context

            #allow_closure
            fn run<'a>(
                &'a self,
                ctx: &'a #krate::WorkflowContext,
                input: Self::Input,
            ) -> impl #krate::__private::Future<
                Output = #krate::__private::Result<Self::Output, #krate::WorkflowError>,
            > + ::core::marker::Send + 'a {
                #run_imports
                #(#items)*
                #unpack
                #body
            }
        }
        #durable
        #handles
    }
}

/// The workflow's input (the first step's) and output (the last value a
/// step produces: `then` and `finally` pass theirs on).
pub(crate) fn io_types(model: &Workflow) -> (Type, Type) {
    let unit: Type = syn::parse_quote!(());
    let input = model.steps[0].input.ty().unwrap_or(&unit);
    let output = model
        .steps
        .iter()
        .filter(|step| !step.passes_value_on())
        .fold(input, |_, step| produces(step, &unit));
    (input.clone(), output.clone())
}

/// The value a step hands on: its output, the `Ok` type of a fallible one.
fn produces<'a>(step: &'a Step, unit: &'a Type) -> &'a Type {
    match &step.output {
        Output::Unit => unit,
        Output::Value(ty) | Output::Fallible { ok: ty, .. } => ty,
    }
}

/// One link of the chain: the constructor for the first step, a verb after.
fn link(
    index: usize,
    step: &Step,
    check: Option<&InputCheck>,
    error_check: Option<&syn::Ident>,
    (krate, prefix): (&syn::Path, &[&syn::Path]),
) -> TokenStream {
    let title = &step.title;
    let value = format_ident!("value");
    let arg = match (&step.input, index) {
        (Input::Nothing, _) => TokenStream::new(),
        (_, 0) => quote!(input),
        _ => checks::pass(step, check, &value),
    };
    let method = &step.method;
    let ctx = step.workflow_ctx.then(|| quote!(ctx,));
    let mut call = if step.has_receiver {
        quote!(self.#method(#ctx #arg))
    } else {
        quote!(Self::#method(#ctx #arg))
    };
    if step.is_async && error_check.is_some() {
        call = quote!(#call.await);
    }
    if let Some(check) = error_check {
        call = checks::map_error(step, check, call);
    }
    if step.is_async && error_check.is_some() {
        call = quote!(async move { #call });
    }
    // A retried first step runs again on a copy of the input, made before
    // an async body takes it. The copy compiles whether or not the input
    // is `Clone` (the retry check beside the chain is the one error when
    // it is not).
    if index == 0 && step.may_run_again() && !matches!(step.input, Input::Nothing) {
        call = quote! {{
            let input = {
                use #krate::__private::{Again as _, AgainNever as _};
                (&&#krate::__private::Probe(&input)).again()
            };
            #call
        }};
    }

    let flavor = |base: &str| {
        let name = match (step.output.is_fallible(), step.is_async) {
            (false, false) => base.to_owned(),
            (true, false) => format!("try_{base}"),
            (false, true) => format!("{base}_async"),
            (true, true) => format!("try_{base}_async"),
        };
        format_ident!("{}", name)
    };
    match (index, step.kind) {
        // A retried first step needs an `Fn` closure, which the `when`
        // verbs ask for and `given` (made for moving values out) does not.
        (0, kind) if step.may_run_again() => {
            let verb = flavor("when");
            let kind = format_ident!("{}", kind.variant());
            quote! {
                #(#prefix::__private::)* Workflow::new(ctx)
                    .#verb(#title, move |()| #call)
                    .kind(#krate::StepKind::#kind)
            }
        }
        (0, kind) => {
            // A first step takes the workflow's input. Its body holds it,
            // so a type-wide retry can run it on a copy (`__given_with`).
            let ctor = match (step.output.is_fallible(), step.is_async) {
                (false, false) => format_ident!("__given_with"),
                (true, false) => format_ident!("__try_given_with"),
                (false, true) => format_ident!("__given_with_async"),
                (true, true) => format_ident!("__try_given_with_async"),
            };
            let (held, param) = match step.input {
                Input::Nothing => (quote!(()), quote!(())),
                _ => (quote!(input), quote!(input)),
            };
            let start = quote! {
                #(#prefix::__private::)* Workflow::#ctor(ctx, #title, #held, move |#param| #call)
            };
            match kind {
                Kind::Given => start,
                // A first `when` takes the workflow's input as a `given` does.
                kind => {
                    let kind = format_ident!("{}", kind.variant());
                    quote!(#start.kind(#krate::StepKind::#kind))
                }
            }
        }
        (_, Kind::Then) => quote!(.then(#title, move |#value| #call)),
        (_, Kind::Finally) => {
            let param = match step.input {
                Input::Nothing => quote!(_),
                _ => quote!(#value),
            };
            quote!(.finally(#title, move |#param| #call))
        }
        (_, kind) => {
            let verb = flavor(kind.keyword());
            quote!(.#verb(#title, move |#value| #call))
        }
    }
}

/// A type written as a path of plain names (`u64`, `Order`,
/// `crate::orders::Order`), the common case, which the macro reads from
/// the syntax tree: printing a type's tokens is a trip through the
/// proc-macro bridge.
pub(crate) fn plain_path(ty: &Type) -> Option<&syn::Path> {
    match ty {
        Type::Path(ty)
            if ty.qself.is_none()
                && ty.attrs.is_empty()
                && ty.path.segments.iter().all(|s| s.arguments.is_none()) =>
        {
            Some(&ty.path)
        }
        _ => None,
    }
}

/// A type as a person writes it: `Vec<u8>`, not `Vec < u8 >`.
pub(crate) fn type_string(ty: &Type) -> String {
    if let Some(path) = plain_path(ty) {
        let mut s = String::new();
        for (i, segment) in path.segments.iter().enumerate() {
            if i > 0 || path.leading_colon.is_some() {
                s.push_str("::");
            }
            s.push_str(&segment.ident.to_string());
        }
        return s;
    }
    tidy(&quote!(#ty).to_string())
}

/// A type's printed tokens as a person writes them. The compiler's
/// printer breaks a long line where it has a space, so whitespace of any
/// kind is one space before the spacing is undone: the string, which a
/// durable workflow's fingerprint is made from, does not depend on where
/// a line happened to break.
fn tidy(printed: &str) -> String {
    let mut s = printed.split_whitespace().collect::<Vec<_>>().join(" ");
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" :: ", "::"),
        (":: ", "::"),
        (" ::", "::"),
        ("& ", "&"),
        (" ,", ","),
        ("( ", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
    ] {
        s = s.replace(from, to);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::type_string;

    #[test]
    fn a_type_broken_across_lines_prints_on_one() {
        assert_eq!(
            super::tidy("std :: collections :: HashMap < String ,\n    Vec < u8 > >"),
            "std::collections::HashMap<String, Vec<u8>>"
        );
    }

    #[test]
    fn paths_with_arguments_are_not_plain() {
        // Parsed from a string: rustfmt would write `Foo<>` in a macro's
        // tokens as `Foo`.
        let empty: syn::Type = syn::parse_str("Foo<>").unwrap();
        for ty in [
            empty.clone(),
            syn::parse_quote!(Vec<u8>),
            syn::parse_quote!(fn(u8) -> u8),
            syn::parse_quote!(Box<dyn Fn()>),
            syn::parse_quote!(<T as Trait>::Out),
        ] {
            let ty: syn::Type = ty;
            assert!(super::plain_path(&ty).is_none());
        }
        assert_eq!(type_string(&empty), "Foo<>");
    }

    #[test]
    fn plain_paths_print_as_their_tokens_do() {
        for ty in [
            syn::parse_quote!(u64),
            syn::parse_quote!(crate::orders::Order),
            syn::parse_quote!(::std::string::String),
            syn::parse_quote!(r#type),
            syn::parse_quote!(Self),
            syn::parse_quote!(super::Order),
            syn::parse_quote!(self::r#type::Kind),
        ] {
            let ty: syn::Type = ty;
            assert!(super::plain_path(&ty).is_some());
            assert_eq!(
                type_string(&ty),
                super::tidy(&quote::quote!(#ty).to_string())
            );
        }
    }

    #[test]
    fn types_print_as_written() {
        let ty: syn::Type =
            syn::parse_quote!(std::collections::HashMap<String, Vec<(u8, &'static str)>>);
        assert_eq!(
            type_string(&ty),
            "std::collections::HashMap<String, Vec<(u8, &'static str)>>"
        );
    }
}
