//! Validate: every rule a workflow or step must follow, each broken rule one
//! error at the span that broke it.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemImpl, LitStr, PathArguments, ReturnType, Signature, Type};

use crate::errors::Errors;
use crate::model::{Compensation, Durability, FreeStep, Input, Output, Step, Workflow};
use crate::options::{BehaviorOption, Kind, StepOptions, WorkflowBehavior, title_from_name};
use crate::parse::RawWorkflow;

/// The schedule `every` or `cron` gave (both are checked while parsing).
fn schedule(options: &crate::options::WorkflowOptions) -> Option<crate::model::Schedule> {
    let cadence = match (options.every, &options.cron) {
        (Some(every), _) => crate::model::Cadence::Every(every),
        (None, Some(cron)) => {
            crate::model::Cadence::Cron(cron.value(), options.zone.as_ref().map(LitStr::value))
        }
        (None, None) => return None,
    };
    Some(crate::model::Schedule {
        cadence,
        run_immediately: options.run_immediately.is_some(),
        catch_up_latest: options.catch_up.is_some_and(|(_, latest)| latest),
    })
}

pub(crate) fn default_crate() -> syn::Path {
    syn::parse_quote!(::workflow_runtime)
}

pub(crate) fn workflow(
    item: &ItemImpl,
    mut raw: RawWorkflow,
    errors: &mut Errors,
) -> Option<Workflow> {
    if let Some((path, _)) = &item.trait_ {
        errors.push(syn::Error::new_spanned(
            path,
            "`#[workflow]` goes on an inherent impl block (`impl MyWorkflow { ... }`), not a trait impl",
        ));
        return None;
    }
    // A workflow runs on a runtime's tasks, so it owns what it holds: a
    // borrowed dependency cannot be one.
    if let Some(lifetime) = item.generics.lifetimes().next() {
        errors.push(syn::Error::new_spanned(
            lifetime,
            "a workflow cannot borrow: it runs on a runtime's tasks, so it must be `'static`; \
             own the dependency or hold an `Arc` of it",
        ));
        return None;
    }
    let name = match (&raw.options.name, type_name(&item.self_ty)) {
        (Some(name), _) => name.value(),
        (None, Some(name)) => name,
        (None, None) => {
            errors.push(syn::Error::new_spanned(
                &item.self_ty,
                "name this workflow with `#[workflow(name = \"...\")]`",
            ));
            return None;
        }
    };
    if raw.step_attrs == 0 {
        errors.push(syn::Error::new(
            item.impl_token.span,
            format!(
                "workflow \"{name}\" has no steps: mark its methods with \
                 `#[step(given = \"...\")]`, `#[step(when = \"...\")]`, ..."
            ),
        ));
        return None;
    }

    let undone_by: Vec<Option<syn::Ident>> = raw
        .steps
        .iter()
        .map(|raw_step| raw_step.options.compensate.clone())
        .collect();
    let mut steps: Vec<Step> = Vec::with_capacity(raw.steps.len());
    let mut repeated = false;
    for (index, raw_step) in raw.steps.into_iter().enumerate() {
        // Where a repeated title is pointed at: the title as written, or
        // the method whose name the title comes from.
        let title_span = raw_step
            .options
            .title
            .as_ref()
            .map_or_else(|| raw_step.method.sig.ident.span(), |title| title.span());
        let step = method_step(
            index,
            raw_step.options,
            &raw_step.method.sig,
            &raw_step.attr,
            raw.options.durable.is_some(),
            errors,
        );
        if let Some(step) = step {
            // A title names its step in records, health and a durable
            // run's journal: two alike would make a failure or a
            // compensation ambiguous.
            if let Some(earlier) = steps.iter().find(|earlier| earlier.title == step.title) {
                repeated = true;
                errors.push(syn::Error::new(
                    title_span,
                    format!(
                        "two steps are titled \"{}\": `{}` and `{}`; a title names its step in \
                         records, health and the journal, so each step needs its own",
                        step.title, earlier.method, step.method
                    ),
                ));
            }
            steps.push(step);
        }
    }
    if repeated || steps.len() != raw.step_attrs {
        return None;
    }
    let durable = raw.options.durable.is_some();
    if !compensations(&mut steps, undone_by, &raw.compensations, durable, errors) {
        return None;
    }
    if !generic_free(&item.generics, &steps, errors) {
        return None;
    }
    // A workflow's `timeout` and `retry` go on each step that takes
    // behaviors, outside the step's own; a step's own of the same kind
    // replaces the workflow's. So they follow the steps' rules: a retried
    // step's input must be `Clone`, checked per step.
    let mut values = Vec::new();
    let mut inherited = Vec::new();
    for behavior in std::mem::take(&mut raw.options.behaviors) {
        match behavior {
            WorkflowBehavior::Builtin(option) => inherited.push(option),
            WorkflowBehavior::Values(more) => values.extend(more),
        }
    }
    for step in steps
        .iter_mut()
        .filter(|step| !matches!(step.kind, Kind::Then | Kind::Finally))
    {
        // The workflow's behaviors in the workflow's order, each replaced
        // in place by the step's own of its kind (so `retry, timeout`
        // stays a timeout per attempt when a step sets its own retry),
        // then the step's other behaviors. A step with `behaviors(..)`
        // keeps its own in the order written, after the workflow's it does
        // not replace: a fallback written before the step's `retry` stays
        // outside it.
        let mut own = std::mem::take(&mut step.behaviors);
        let as_written = own
            .iter()
            .any(|b| matches!(b, BehaviorOption::Values { .. }));
        let mut behaviors = Vec::with_capacity(inherited.len() + own.len());
        for workflow_wide in &inherited {
            match own
                .iter()
                .position(|b| b.keyword() == workflow_wide.keyword())
            {
                Some(_) if as_written => {}
                Some(at) => behaviors.push(own.remove(at)),
                None => {
                    if matches!(workflow_wide, BehaviorOption::Retry { .. }) {
                        step.inherited_retry = true;
                    }
                    behaviors.push(workflow_wide.clone());
                }
            }
        }
        behaviors.append(&mut own);
        step.behaviors = behaviors;
    }
    Some(Workflow {
        schedule: schedule(&raw.options),
        self_ty: (*item.self_ty).clone(),
        generics: item.generics.clone(),
        name,
        description: raw.options.description.map(|d| d.value()).or(raw.doc),
        krate: raw.options.krate.unwrap_or_else(default_crate),
        steps,
        handlers: raw.options.handlers.unwrap_or_default(),
        durable: raw.options.durable.map(|(_, version)| Durability {
            version: version.map(|v| v.value()),
        }),
        step_timeout: raw.options.step_timeout,
        continue_on_error: raw.options.continue_on_error,
        behaviors: values,
    })
}

/// Gives each step the `#[compensation]` its `compensate = name` names:
/// a name that is no compensation, a compensation on a step that passes
/// its value on, and a compensation no step names are each one error.
fn compensations(
    steps: &mut [Step],
    undone_by: Vec<Option<syn::Ident>>,
    raw: &[crate::parse::RawCompensation],
    durable: bool,
    errors: &mut Errors,
) -> bool {
    let before = errors_len(errors);
    let checked: Vec<Option<Compensation>> = raw
        .iter()
        .map(|c| compensation(c, durable, errors))
        .collect();
    let mut used = vec![false; raw.len()];
    // A misspelt name leaves its compensation unnamed: one error, not two.
    let mut unknown = false;
    for (step, name) in steps.iter_mut().zip(undone_by) {
        let Some(name) = name else { continue };
        if let Some(at) = raw.iter().position(|c| c.method.sig.ident == name) {
            used[at] = true;
        }
        if step.passes_value_on() {
            errors.push(syn::Error::new_spanned(
                &name,
                format!(
                    "`{}` step \"{}\" passes its value on: it has nothing to undo",
                    step.kind.keyword(),
                    step.title
                ),
            ));
            continue;
        }
        match raw.iter().position(|c| c.method.sig.ident == name) {
            Some(at) => step.compensation = checked[at].clone(),
            None => {
                unknown = true;
                errors.push(syn::Error::new_spanned(
                    &name,
                    format!(
                        "step \"{}\" is undone by `{name}`, but this impl has no `#[compensation]` \
                     method of that name",
                        step.title
                    ),
                ));
            }
        }
    }
    for (compensation, used) in raw.iter().zip(used) {
        if !used && !unknown {
            let name = &compensation.method.sig.ident;
            errors.push(syn::Error::new_spanned(
                name,
                format!(
                    "compensation `{name}` undoes no step: name it on the step it undoes, \
                     `#[step(compensate = {name})]`"
                ),
            ));
        }
    }
    errors_len(errors) == before
}

/// One `#[compensation]` method, checked: `&self` or no receiver, its
/// step's output or nothing as input, nothing or `Result<(), E>` back.
fn compensation(
    raw: &crate::parse::RawCompensation,
    durable: bool,
    errors: &mut Errors,
) -> Option<Compensation> {
    let before = errors_len(errors);
    let sig = &raw.method.sig;
    let name = &sig.ident;
    let title = raw
        .options
        .title
        .as_ref()
        .map_or_else(|| title_from_name(name), LitStr::value);
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new(
            sig.generics.span(),
            format!("compensation `{name}` cannot be generic: it takes its step's output"),
        ));
    }
    let (has_receiver, mut params) = receiver_and_params(sig, errors, || {
        format!("compensation `{name}` must take `&self`, as steps do")
    });
    // A durable compensation runs at least once, like a step: it may take
    // `&StepCtx` first, for an idempotency key of its own.
    let step_ctx = params.first().is_some_and(|param| is_step_ctx(&param.ty));
    if step_ctx {
        if !durable {
            errors.push(syn::Error::new_spanned(
                &params[0].ty,
                format!(
                    "compensation `{name}` takes `&StepCtx`, which durable runs give: declare \
                     the workflow `#[workflow(durable)]`"
                ),
            ));
        }
        params.remove(0);
    }
    if let Some(extra) = params.get(1) {
        errors.push(syn::Error::new_spanned(
            extra,
            format!(
                "compensation `{name}` takes more than one input; it takes the output of the \
                 step it undoes"
            ),
        ));
    }
    let fallible = match output_of(&sig.output) {
        Output::Unit => None,
        Output::Fallible { ok, full } if is_unit(&ok) => Some(*full),
        _ => {
            errors.push(return_error(
                sig,
                format!(
                    "compensation `{name}` returns nothing or `Result<(), E>`: it undoes, it \
                     makes no value"
                ),
            ));
            None
        }
    };
    (errors_len(errors) == before).then(|| Compensation {
        title,
        method: name.clone(),
        has_receiver,
        step_ctx,
        input: params.first().map(|param| (*param.ty).clone()),
        fallible,
        is_async: sig.asyncness.is_some(),
        behaviors: raw.options.behaviors.clone(),
    })
}

/// Whether a method takes a receiver, which must be `&self` (otherwise one
/// error, `must_take_ref`'s), and its typed parameters.
fn receiver_and_params<'a>(
    sig: &'a Signature,
    errors: &mut Errors,
    must_take_ref: impl Fn() -> String,
) -> (bool, Vec<&'a syn::PatType>) {
    let mut has_receiver = false;
    let mut params = Vec::new();
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(receiver) => {
                has_receiver = true;
                let by_ref = matches!(receiver.kind, syn::ReceiverKind::Reference(_, _, None))
                    && receiver.mutability.is_none();
                if !by_ref {
                    errors.push(syn::Error::new_spanned(receiver, must_take_ref()));
                }
            }
            FnArg::Typed(pat) => params.push(pat),
        }
    }
    (has_receiver, params)
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

/// Whether no step's input or output names a parameter of the impl
/// block (`impl<R: OrderRepo> Processor<R>`): the parameters are the
/// workflow's dependencies, held in its fields, while the pipeline's types
/// stay concrete so each step's check and record can name them. One error
/// on each type that does name one.
fn generic_free(generics: &syn::Generics, steps: &[Step], errors: &mut Errors) -> bool {
    let params: Vec<String> = generics
        .type_params()
        .map(|p| p.ident.to_string())
        .chain(generics.const_params().map(|p| p.ident.to_string()))
        .collect();
    if params.is_empty() {
        return true;
    }
    let mut free = true;
    for step in steps {
        let output = match &step.output {
            Output::Unit => None,
            Output::Value(ty) => Some(ty),
            Output::Fallible { full, .. } => Some(&**full),
        };
        let types = [("takes", step.input.ty()), ("returns", output)];
        for (verb, ty) in types {
            let Some(ty) = ty else { continue };
            if let Some(param) = depends(ty, &params) {
                free = false;
                errors.push(syn::Error::new_spanned(
                    ty,
                    format!(
                        "step \"{}\" {verb} `{}`, which depends on the impl's parameter `{param}`: \
                         a workflow's step types must be concrete (its fields may use the parameters)",
                        step.title,
                        crate::expand::type_string(ty),
                    ),
                ));
            }
        }
    }
    free
}

/// The impl parameter `ty` names, if any: a path whose first segment is
/// one (`R`, `R::Row`, `Vec<R>`), or `Self`, which stands for the generic
/// type. `crate::R` or `<Memory as Repo>::R` name other items.
fn depends(ty: &Type, params: &[String]) -> Option<String> {
    let named = |ident: &syn::Ident| {
        (ident == "Self")
            .then(|| "Self".to_owned())
            .or_else(|| params.iter().find(|p| ident == p.as_str()).cloned())
    };
    let in_path = |path: &syn::Path, first_counts: bool| -> Option<String> {
        if first_counts
            && path.leading_colon.is_none()
            && let Some(found) = path.segments.first().and_then(|s| named(&s.ident))
        {
            return Some(found);
        }
        path.segments
            .iter()
            .find_map(|segment| match &segment.arguments {
                PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
                    GenericArgument::Type(ty) => depends(ty, params),
                    GenericArgument::AssocType(assoc) => depends(&assoc.ty, params),
                    GenericArgument::Const(expr) => tokens_name(quote::quote!(#expr), params),
                    _ => None,
                }),
                PathArguments::Parenthesized(args) => args
                    .inputs
                    .iter()
                    .find_map(|arg| depends(&arg.ty, params))
                    .or_else(|| match &args.output {
                        ReturnType::Type(_, ty) => depends(ty, params),
                        ReturnType::Default => None,
                    }),
                PathArguments::None => None,
            })
    };
    match ty {
        Type::Path(p) => match &p.qself {
            Some(qself) => depends(&qself.ty, params).or_else(|| in_path(&p.path, false)),
            None => in_path(&p.path, true),
        },
        Type::Reference(r) => depends(&r.elem, params),
        Type::Slice(s) => depends(&s.elem, params),
        Type::Array(a) => {
            let len = &a.len;
            depends(&a.elem, params).or_else(|| tokens_name(quote::quote!(#len), params))
        }
        Type::Ptr(p) => depends(&p.elem, params),
        Type::Paren(p) => depends(&p.elem, params),
        Type::Group(g) => depends(&g.elem, params),
        Type::Tuple(t) => t.elems.iter().find_map(|ty| depends(ty, params)),
        // Trait objects, `impl Trait`, fn pointers, macros: any mention.
        other => tokens_name(quote::quote!(#other), params),
    }
}

/// The parameter (or `Self`) that `tokens` name anywhere, if any.
fn tokens_name(tokens: proc_macro2::TokenStream, params: &[String]) -> Option<String> {
    tokens.into_iter().find_map(|token| match token {
        proc_macro2::TokenTree::Ident(ident) => (ident == "Self")
            .then(|| "Self".to_owned())
            .or_else(|| params.iter().find(|p| ident == p.as_str()).cloned()),
        proc_macro2::TokenTree::Group(group) => tokens_name(group.stream(), params),
        _ => None,
    })
}

fn type_name(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

/// One step method, checked.
fn method_step(
    index: usize,
    options: StepOptions,
    sig: &Signature,
    attr: &syn::Attribute,
    durable: bool,
    errors: &mut Errors,
) -> Option<Step> {
    let (kind, kind_span) = options.kind.unwrap_or((Kind::When, attr.span()));
    let title = options
        .title
        .as_ref()
        .map_or_else(|| title_from_name(&sig.ident), |t| t.value());
    let before = errors_len(errors);
    let fail =
        |errors: &mut Errors, span: Span, msg: String| errors.push(syn::Error::new(span, msg));

    if kind == Kind::Given && index > 0 {
        fail(
            errors,
            kind_span,
            format!(
                "`given` must be the first step, but step \"{title}\" comes after another step"
            ),
        );
    }
    if index == 0 && matches!(kind, Kind::Then | Kind::Finally) {
        fail(
            errors,
            kind_span,
            format!(
                "a workflow starts with a `given` or `when` step, not `{}`: step \"{title}\" has no value to check yet",
                kind.keyword()
            ),
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        fail(
            errors,
            sig.generics.span(),
            format!(
                "step \"{title}\" cannot be generic: each step's input and output types must be known to check the pipeline"
            ),
        );
    }
    let first_behavior = options
        .behaviors
        .first()
        .map(BehaviorOption::span)
        .or(options.replayable);
    if let Some(span) = first_behavior.filter(|_| matches!(kind, Kind::Then | Kind::Finally)) {
        fail(
            errors,
            span,
            format!(
                "behaviors wrap steps that produce a value; `{}` step \"{title}\" cannot have them",
                kind.keyword()
            ),
        );
    }
    if let Some(asyncness) = sig
        .asyncness
        .filter(|_| matches!(kind, Kind::Then | Kind::Finally))
    {
        fail(
            errors,
            asyncness.span,
            format!(
                "a `{}` step is sync: make step \"{title}\" a plain `fn`",
                kind.keyword()
            ),
        );
    }

    let (has_receiver, mut params) = receiver_and_params(sig, errors, || {
        format!(
            "step \"{title}\" must take `&self`: a workflow's steps share it, so none may own or mutate it"
        )
    });
    // `&WorkflowContext` first: the run's context, for its metadata.
    let workflow_ctx = params
        .first()
        .is_some_and(|param| is_workflow_ctx(&param.ty));
    if workflow_ctx {
        params.remove(0);
    }
    let step_ctx = params.first().is_some_and(|param| is_step_ctx(&param.ty));
    if step_ctx {
        let param = params.remove(0);
        if !durable {
            errors.push(syn::Error::new_spanned(
                &param.ty,
                format!(
                    "step \"{title}\" takes `&StepCtx`, which durable runs give: declare the \
                     workflow with `#[workflow(durable)]`"
                ),
            ));
        } else if matches!(kind, Kind::Then | Kind::Finally) {
            errors.push(syn::Error::new_spanned(
                &param.ty,
                format!(
                    "`{}` step \"{title}\" is not journaled, so it has no `&StepCtx`",
                    kind.keyword()
                ),
            ));
        }
    }
    let tx = match options.transactional {
        None => None,
        Some(span) if !durable => {
            fail(
                errors,
                span,
                format!(
                    "step \"{title}\" is transactional, which durable runs give: declare the \
                     workflow with `#[workflow(durable)]`"
                ),
            );
            None
        }
        Some(span) if matches!(kind, Kind::Then | Kind::Finally) => {
            fail(
                errors,
                span,
                format!(
                    "`{}` step \"{title}\" is not journaled, so it cannot be transactional",
                    kind.keyword()
                ),
            );
            None
        }
        Some(span) => match params.first().map(|param| &*param.ty) {
            Some(Type::Reference(r)) if r.mutability.is_some() => {
                let tx = (*r.elem).clone();
                params.remove(0);
                Some(tx)
            }
            _ => {
                fail(
                    errors,
                    span,
                    format!(
                        "transactional step \"{title}\" takes its transaction before its \
                         input: `tx: &mut SqliteTx`"
                    ),
                );
                None
            }
        },
    };
    if let Some(extra) = params.get(1) {
        errors.push(syn::Error::new_spanned(
            extra,
            format!(
                "step \"{title}\" takes more than one input; a step takes one, the previous step's output \
                 (group values in a struct or a tuple)"
            ),
        ));
    }

    let output = output_of(&sig.output);
    let input = match (kind, params.first()) {
        (_, None) if index == 0 || kind == Kind::Finally => Input::Nothing,
        (_, None) => {
            fail(
                errors,
                sig.ident.span(),
                format!(
                    "step \"{title}\" takes no input; a `{}` step takes the previous step's output",
                    kind.keyword()
                ),
            );
            Input::Nothing
        }
        (Kind::Then, Some(param)) => match &*param.ty {
            Type::Reference(r) if r.mutability.is_none() => Input::Ref((*r.elem).clone()),
            other => {
                fail(
                    errors,
                    other.span(),
                    format!(
                        "`then` step \"{title}\" takes its input by reference (`&T`): the value passes on to the next step"
                    ),
                );
                Input::Nothing
            }
        },
        (Kind::Finally, Some(param)) => match outcome_value(&param.ty) {
            Some(ty) => Input::Outcome(ty),
            None => {
                errors.push(syn::Error::new_spanned(
                    &param.ty,
                    format!(
                        "`finally` step \"{title}\" takes nothing or the outcome so far: \
                         `Result<&T, &WorkflowError>`"
                    ),
                ));
                Input::Nothing
            }
        },
        (_, Some(param)) => Input::Value((*param.ty).clone()),
    };

    match kind {
        Kind::Then if !returns_bool(&sig.output) => errors.push(return_error(
            sig,
            format!("`then` step \"{title}\" must return `bool`: it asserts on the value"),
        )),
        Kind::Finally if !matches!(output, Output::Unit) => errors.push(return_error(
            sig,
            format!("`finally` step \"{title}\" returns nothing: the value passes on unchanged"),
        )),
        Kind::Then | Kind::Finally => {}
        _ => {
            if let Some(ty) = value_type(&output).filter(|ty| matches!(ty, Type::ImplTrait(_))) {
                fail(
                    errors,
                    ty.span(),
                    format!(
                        "step \"{title}\" must name its output type (not `impl Trait`): the next step's input is checked against it"
                    ),
                );
            }
        }
    }

    (errors_len(errors) == before).then(|| Step {
        kind,
        title,
        method: sig.ident.clone(),
        has_receiver,
        input,
        output,
        is_async: sig.asyncness.is_some(),
        behaviors: options.behaviors,
        workflow_ctx,
        step_ctx,
        tx,
        replayable: options.replayable.is_some(),
        inherited_retry: false,
        compensation: None,
    })
}

/// `&StepCtx`, by any path (`&durable::StepCtx`).
fn is_step_ctx(ty: &Type) -> bool {
    is_shared_ref_to(ty, "StepCtx")
}

/// `&WorkflowContext`, by any path (`&workflow_runtime::WorkflowContext`).
fn is_workflow_ctx(ty: &Type) -> bool {
    is_shared_ref_to(ty, "WorkflowContext")
}

/// `&Name` (no lifetime parameters on `Name`), by any path.
fn is_shared_ref_to(ty: &Type, name: &str) -> bool {
    let Type::Reference(r) = ty else {
        return false;
    };
    match &*r.elem {
        Type::Path(p) if r.mutability.is_none() && p.qself.is_none() => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == name && s.arguments.is_none()),
        _ => false,
    }
}

fn errors_len(errors: &Errors) -> usize {
    errors.count()
}

fn return_error(sig: &Signature, message: String) -> syn::Error {
    match &sig.output {
        ReturnType::Type(_, ty) => syn::Error::new_spanned(ty, message),
        ReturnType::Default => syn::Error::new(sig.ident.span(), message),
    }
}

fn returns_bool(output: &ReturnType) -> bool {
    let ReturnType::Type(_, ty) = output else {
        return false;
    };
    let Type::Path(p) = &**ty else {
        return false;
    };
    let path = &p.path;
    path.is_ident("bool")
        || (path.segments.len() == 3
            && matches!(path.segments[0].ident.to_string().as_str(), "std" | "core")
            && path.segments[1].ident == "primitive"
            && path.segments[2].ident == "bool")
}

/// `Result<T, E>` (any path ending in `Result`) → `T`.
fn result_ok(ty: &Type) -> Option<Type> {
    let Type::Path(p) = ty else {
        return None;
    };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

/// `Result<&T, &WorkflowError>` → `T`.
fn outcome_value(ty: &Type) -> Option<Type> {
    match result_ok(ty)? {
        Type::Reference(r) if r.mutability.is_none() => Some((*r.elem).clone()),
        _ => None,
    }
}

pub(crate) fn output_of(output: &ReturnType) -> Output {
    match output {
        ReturnType::Default => Output::Unit,
        ReturnType::Type(_, ty) => match &**ty {
            Type::Tuple(t) if t.elems.is_empty() => Output::Unit,
            ty => match result_ok(ty) {
                Some(ok) => Output::Fallible {
                    ok,
                    full: Box::new(ty.clone()),
                },
                None => Output::Value(ty.clone()),
            },
        },
    }
}

fn value_type(output: &Output) -> Option<&Type> {
    match output {
        Output::Unit => None,
        Output::Value(ty) | Output::Fallible { ok: ty, .. } => Some(ty),
    }
}

/// A `#[step]` free function, checked.
pub(crate) fn free_step(
    options: StepOptions,
    item: syn::ItemFn,
    errors: &mut Errors,
) -> Option<FreeStep> {
    let before = errors_len(errors);
    if let Some(behavior) = options.behaviors.first() {
        errors.push(syn::Error::new(
            behavior.span(),
            "behaviors go on the steps of a `#[workflow]`, or on a chain step: \
             `.try_when_async(\"charge\", charge).retry(Retry::max_attempts(3))`",
        ));
    }
    if let Some(span) = options.transactional {
        errors.push(syn::Error::new(
            span,
            "`transactional` goes on a step of a `#[workflow(durable)]`, whose journal \
             commits with the step's transaction",
        ));
    }
    if let Some(span) = options.replayable {
        errors.push(syn::Error::new(
            span,
            "`replayable` goes on the steps of a `#[workflow]`, or on a chain step: \
             `.try_when_async(\"charge\", charge).replayable()`",
        ));
    }
    if let Some(receiver) = item.sig.receiver() {
        errors.push(syn::Error::new_spanned(
            receiver,
            "`#[step]` on a method needs `#[workflow]` on its impl block",
        ));
    }
    let ret: Type = match &item.sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    if let Type::ImplTrait(_) = ret {
        errors.push(syn::Error::new_spanned(
            &ret,
            "a `#[step]` function must name its return type (not `impl Trait`), so its outcome can be recorded",
        ));
    }
    if errors_len(errors) != before {
        return None;
    }
    let params = item
        .sig
        .inputs
        .iter()
        .map(|arg| match arg {
            FnArg::Typed(p) => match &*p.pat {
                syn::Pat::Ident(id) => Some(id.ident.clone()),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect();
    Some(FreeStep {
        kind: options.kind.map_or(Kind::When, |(k, _)| k),
        title: options
            .title
            .map_or_else(|| title_from_name(&item.sig.ident), |t| t.value()),
        krate: default_crate(),
        fallible: output_of(&item.sig.output).is_fallible(),
        params,
        item,
        ret,
    })
}

#[cfg(test)]
mod generic_params {
    use super::depends;

    fn found(ty: syn::Type) -> Option<String> {
        depends(&ty, &["R".to_owned(), "N".to_owned()])
    }

    #[test]
    fn a_type_naming_a_parameter_or_self_depends_on_it() {
        assert_eq!(found(syn::parse_quote!(Vec<R>)).as_deref(), Some("R"));
        assert_eq!(found(syn::parse_quote!(R::Row)).as_deref(), Some("R"));
        assert_eq!(found(syn::parse_quote!(&'static [R])).as_deref(), Some("R"));
        assert_eq!(found(syn::parse_quote!([u8; N])).as_deref(), Some("N"));
        assert_eq!(
            found(syn::parse_quote!(Result<(), Box<dyn Fn(R)>>)).as_deref(),
            Some("R")
        );
        assert_eq!(
            found(syn::parse_quote!(<R as Repo>::Row)).as_deref(),
            Some("R")
        );
        assert_eq!(
            found(syn::parse_quote!(Wrapper<Self>)).as_deref(),
            Some("Self")
        );
        assert_eq!(
            found(syn::parse_quote!(Option<[u8; N + 1]>)).as_deref(),
            Some("N")
        );
    }

    #[test]
    fn a_path_that_merely_ends_in_a_parameters_name_does_not() {
        assert_eq!(found(syn::parse_quote!(crate::R)), None);
        assert_eq!(found(syn::parse_quote!(::models::R)), None);
        assert_eq!(found(syn::parse_quote!(<Memory as Repo>::R)), None);
        assert_eq!(found(syn::parse_quote!(Vec<models::N>)), None);
        assert_eq!(found(syn::parse_quote!((u8, String))), None);
    }
}
