//! The hidden compile-time checks between steps. Each is a tiny trait local
//! to the generated `run`, implemented only for the right type, whose
//! `#[diagnostic::on_unimplemented]` message names both steps; the call that
//! needs it is spanned on the user's own type, so the error lands there.
//!
//! rustc's help under such an error names the trait, so each is named after
//! the step's own method (`save` → `SaveInput`, `SaveResult`). The two a
//! user meets most, a step taking the wrong type and a retried step whose
//! input is not `Clone`, are named the method itself (`save`, `charge`),
//! each in a block of its own, so their help reads in the user's names
//! alone: "the trait `save<Invoice>` is not implemented for `Order`".

use std::collections::BTreeSet;

use proc_macro2::{TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Type};

use super::workflow::plain_path;
use crate::model::{Input, Output, Step};
use crate::options::BehaviorOption;

/// The check that step `index` takes what the step before produces.
pub(crate) struct InputCheck {
    pub(crate) trait_name: Ident,
    pub(crate) item: TokenStream,
}

/// The names the checks of one workflow take: never a name written in
/// the steps' signatures, transaction types or behaviors (a check would
/// shadow it inside `run`), never one another check took.
pub(crate) struct CheckNames {
    taken: BTreeSet<String>,
    /// Whether a behavior's expression calls a macro, which may write any
    /// name where `run` has it.
    macro_in_behaviors: bool,
}

impl CheckNames {
    pub(crate) fn new(steps: &[Step]) -> Self {
        let (taken, macro_in_behaviors) = taken_names(steps);
        CheckNames {
            taken,
            macro_in_behaviors,
        }
    }

    /// `save` with `Input` → `SaveInput`; `Check` added while the name is
    /// taken. A method name with no letters to start it (`_1st`) reads
    /// `Step1stInput`.
    pub(crate) fn name(&mut self, step: &Step, suffix: &str) -> Ident {
        self.name_of(&step.method, suffix)
    }

    /// The method's own name, for a check declared in a block of its own
    /// (so checks of one step need no names apart); `_check` added when a
    /// type in the steps' signatures is written with it, which the check
    /// would shadow in its block.
    pub(crate) fn method(&self, step: &Step) -> Ident {
        let written = step.method.to_string();
        let plain = written.strip_prefix("r#").unwrap_or(&written);
        if !self.taken.contains(plain) && !self.taken.contains(MACRO) {
            // As written, raw (`r#type`) or not.
            return step.method.clone();
        }
        let mut name = format!("{plain}_check");
        while self.taken.contains(&name) {
            name.push_str("_check");
        }
        format_ident!("{}", name)
    }

    /// Whether none of `names` is written in the steps' signatures,
    /// transaction types or behaviors (nor could be, by a macro there):
    /// those are all the user's tokens that generated code around the
    /// steps holds, so a `use` of them there shadows nothing of the
    /// user's.
    pub(crate) fn unwritten(&self, names: &[&str]) -> bool {
        !self.taken.contains(MACRO)
            && !self.macro_in_behaviors
            && names.iter().all(|name| !self.taken.contains(*name))
    }

    /// [`name`](Self::name), for any method (a compensation's).
    pub(crate) fn name_of(&mut self, method: &Ident, suffix: &str) -> Ident {
        let method = method.to_string();
        let method = method.strip_prefix("r#").unwrap_or(&method);
        let mut name: String = method
            .split('_')
            .filter(|word| !word.is_empty())
            .map(|word| {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                    .unwrap_or_default()
            })
            .collect();
        if !name.starts_with(|c: char| c.is_alphabetic()) {
            name.insert_str(0, "Step");
        }
        name.push_str(suffix);
        while self.taken.contains(&name) {
            name.push_str("Check");
        }
        self.taken.insert(name.clone());
        format_ident!("{}", name)
    }
}

/// Marks, among the taken names, that a signature holds a macro's type.
const MACRO: &str = "!";

/// Every identifier in the steps' signatures, transaction types and
/// behaviors (a retry's filter, a behavior's expression), and whether one
/// of those expressions calls a macro (or says `!`, which is taken for
/// one). A macro in an expression marks only that, so the checks named
/// after methods keep their names (see `method`).
fn taken_names(steps: &[Step]) -> (BTreeSet<String>, bool) {
    // `r#type` shadows as `type` does.
    fn take(ident: &Ident, names: &mut BTreeSet<String>) {
        let name = ident.to_string();
        names.insert(name.strip_prefix("r#").unwrap_or(&name).to_owned());
    }
    fn collect(tokens: TokenStream, names: &mut BTreeSet<String>) {
        for token in tokens {
            match token {
                TokenTree::Ident(ident) => take(&ident, names),
                // A type a macro makes may name anything: the checks
                // named after methods take `_check` (see `method`).
                TokenTree::Punct(punct) if punct.as_char() == '!' => {
                    names.insert(MACRO.to_owned());
                }
                TokenTree::Group(group) => collect(group.stream(), names),
                _ => {}
            }
        }
    }
    fn behaviors(list: &[BehaviorOption], names: &mut BTreeSet<String>) {
        for behavior in list {
            match behavior {
                BehaviorOption::Retry {
                    filter: Some(path), ..
                } => collect(quote!(#path), names),
                BehaviorOption::Values { exprs, .. } => {
                    for expr in exprs {
                        collect(quote!(#expr), names);
                    }
                }
                _ => {}
            }
        }
    }
    fn collect_type(ty: &Type, names: &mut BTreeSet<String>) {
        match plain_path(ty) {
            Some(path) => {
                for segment in &path.segments {
                    take(&segment.ident, names);
                }
            }
            None => collect(quote!(#ty), names),
        }
    }
    let mut names = BTreeSet::new();
    let mut written = BTreeSet::new();
    for step in steps {
        if let Some(ty) = step.input.ty() {
            collect_type(ty, &mut names);
        }
        match &step.output {
            Output::Value(ty) => collect_type(ty, &mut names),
            Output::Fallible { full, .. } => collect(quote!(#full), &mut names),
            Output::Unit => {}
        }
        if let Some(tx) = &step.tx {
            collect(quote!(#tx), &mut names);
        }
        behaviors(&step.behaviors, &mut written);
        if let Some(compensation) = &step.compensation {
            for ty in compensation.input.iter().chain(&compensation.fallible) {
                collect(quote!(#ty), &mut names);
            }
            behaviors(&compensation.behaviors, &mut written);
        }
    }
    let macro_in_behaviors = written.remove(MACRO);
    names.extend(written);
    (names, macro_in_behaviors)
}

/// Whether a step's input type is written exactly as the type the step
/// before it produces: then they are one type, and the chain's own type
/// check is enough. A type from a macro or an `impl Trait` is not taken
/// on its looks.
pub(crate) fn written_alike(taken: Option<&Type>, produced: &Type) -> bool {
    fn plain(tokens: TokenStream) -> bool {
        tokens.into_iter().all(|token| match token {
            TokenTree::Ident(ident) => ident != "impl",
            TokenTree::Punct(punct) => punct.as_char() != '!',
            TokenTree::Group(group) => plain(group.stream()),
            TokenTree::Literal(_) => true,
        })
    }
    let Some(taken) = taken else {
        return false;
    };
    if let (Some(a), Some(b)) = (plain_path(taken), plain_path(produced)) {
        return a.leading_colon.is_some() == b.leading_colon.is_some()
            && a.segments.len() == b.segments.len()
            && a.segments
                .iter()
                .zip(&b.segments)
                .all(|(a, b)| a.ident == b.ident);
    }
    let (taken, produced) = (quote!(#taken), quote!(#produced));
    taken.to_string() == produced.to_string() && plain(taken)
}

pub(crate) fn input_check(step: &Step, producer: &Step, names: &mut CheckNames) -> InputCheck {
    let trait_name = names.method(step);
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
        #[allow(non_camel_case_types)]
        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        trait #trait_name<T> {
            fn checked(self) -> T;
            fn checked_ref(&self) -> &T;
        }
        impl<T> #trait_name<T> for T {
            fn checked(self) -> T { self }
            fn checked_ref(&self) -> &T { self }
        }
    };
    InputCheck { trait_name, item }
}

/// The check that a step with `retry` can copy its input for another
/// attempt: one error, on the step's input type, naming the step.
pub(crate) fn retry_check(step: &Step, names: &mut CheckNames) -> Option<TokenStream> {
    if !step.may_run_again() {
        return None;
    }
    let ty = step.input.ty()?;
    let trait_name = names.method(step);
    let why = if step.inherited_retry {
        "has the workflow's `retry` (`#[workflow(retry(..))]`)"
    } else if step.retries() {
        "has `retry`"
    } else {
        "is `replayable`"
    };
    let message = format!(
        "step \"{}\" {why}, so it may run more than once: its input `{{Self}}` must be `Clone`",
        step.title
    );
    let label = "this step's input is `{Self}`, which is not `Clone`";
    let note = "derive or implement `Clone` for `{Self}`, or pass an `Arc` of it";
    let check = must_clone(&trait_name, &message, label, note, quote!(#ty));
    // In a block of its own: the trait has the method's name.
    Some(quote!({
        #[allow(non_camel_case_types)]
        #check
    }))
}

/// A check that `ty` is `Clone`, failing with the given words. Only the
/// type carries the user's span: the error lands on it, with the trait's
/// own message and no suggestion to borrow it instead.
pub(crate) fn must_clone(
    trait_name: &Ident,
    message: &str,
    label: &str,
    note: &str,
    ty: TokenStream,
) -> TokenStream {
    quote! {
        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        trait #trait_name {
            const CLONE: () = ();
        }
        #[diagnostic::do_not_recommend]
        impl<T: ::core::clone::Clone> #trait_name for T {}
        let () = <#ty as #trait_name>::CLONE;
    }
}

/// The argument expression handing `value` to the step, checked.
pub(crate) fn pass(step: &Step, check: Option<&InputCheck>, value: &Ident) -> TokenStream {
    let (Some(ty), Some(check)) = (step.input.ty(), check) else {
        return quote!(#value);
    };
    // Spanned on the user's parameter type, so the error lands there.
    let span = ty.span();
    let mut name = check.trait_name.clone();
    name.set_span(span);
    let item = &check.item;
    // The check is declared where it is used, in a block of its own.
    let checked = match step.input {
        Input::Value(_) => quote_spanned!(span=> <_ as #name<#ty>>::checked(#value)),
        Input::Ref(_) => quote_spanned!(span=> <_ as #name<#ty>>::checked_ref(#value)),
        Input::Outcome(_) => {
            quote_spanned!(span=> #value.map(|v| <_ as #name<#ty>>::checked_ref(v)))
        }
        Input::Nothing => return quote!(#value),
    };
    quote!({
        #item
        #checked
    })
}

/// The check that a fallible step's error can become a workflow error.
/// Generic over the `Ok` type rather than naming it as an associated type,
/// so a failed check leaves nothing unknown to cause a second error.
pub(crate) fn error_check(
    step: &Step,
    krate: &syn::Path,
    names: &mut CheckNames,
) -> Option<(Ident, TokenStream)> {
    let Output::Fallible { .. } = &step.output else {
        return None;
    };
    let trait_name = names.name(step, "Result");
    let message = format!(
        "step \"{}\" returns `{{Self}}`, whose error cannot become a workflow error",
        step.title
    );
    let label = "the error type must implement `std::error::Error + Send + Sync + 'static`";
    let item = quote! {
        #[diagnostic::on_unimplemented(message = #message, label = #label)]
        trait #trait_name<T> {
            fn checked(self) -> #krate::__private::Result<T, #krate::__private::StepError>;
        }
        #[diagnostic::do_not_recommend]
        impl<T, E> #trait_name<T> for #krate::__private::Result<T, E>
        where
            E: ::core::convert::Into<#krate::__private::StepError>,
        {
            fn checked(self) -> #krate::__private::Result<T, #krate::__private::StepError> {
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
    quote_spanned!(span=> <_ as #check<#ok>>::checked(#call))
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::written_alike;

    #[test]
    fn only_types_written_alike_skip_their_check() {
        let order: syn::Type = parse_quote!(Order);
        assert!(written_alike(Some(&parse_quote!(Order)), &order));
        let list: syn::Type = parse_quote!(Vec<(u8, &'static str)>);
        assert!(written_alike(
            Some(&parse_quote!(Vec<(u8, &'static str)>)),
            &list
        ));
        assert!(!written_alike(Some(&parse_quote!(Invoice)), &order));
        assert!(!written_alike(None, &order));
        // Paths of plain names, compared name by name as printed.
        let path: syn::Type = parse_quote!(crate::orders::Order);
        assert!(written_alike(
            Some(&parse_quote!(crate::orders::Order)),
            &path
        ));
        assert!(!written_alike(Some(&parse_quote!(orders::Order)), &path));
        assert!(!written_alike(Some(&parse_quote!(::Order)), &order));
        let raw: syn::Type = parse_quote!(r#type);
        assert!(written_alike(Some(&parse_quote!(r#type)), &raw));
        assert!(!written_alike(Some(&parse_quote!(r#Order)), &order));
        assert!(!written_alike(Some(&parse_quote!(Order<u8>)), &order));
        // An `impl Trait` (each its own type) or a type a macro makes keeps
        // its check.
        let opaque: syn::Type = parse_quote!(impl Into<u64>);
        assert!(!written_alike(Some(&opaque), &opaque));
        let expanded: syn::Type = parse_quote!(order_type!());
        assert!(!written_alike(Some(&expanded), &expanded));
    }
}
