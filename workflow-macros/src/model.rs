//! What the macros understood: the checked shape of a workflow and its
//! steps, ready to expand.

use syn::{Ident, Path, Type};

use crate::options::{BehaviorOption, Kind};

/// A `#[workflow]` impl block.
pub(crate) struct Workflow {
    pub(crate) self_ty: Type,
    /// The impl block's parameters: the workflow's dependencies.
    pub(crate) generics: syn::Generics,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) krate: Path,
    pub(crate) steps: Vec<Step>,
    /// `every` or `cron`, when given.
    pub(crate) schedule: Option<Schedule>,
    /// Declared handlers: request and response types.
    pub(crate) handlers: Vec<(Type, Type)>,
    /// `#[workflow(durable)]`: journaled, with an optional version label.
    pub(crate) durable: Option<Durability>,
    /// `step_timeout = ".."`: every step's limit unless the runner's
    /// options or a caller say otherwise.
    pub(crate) step_timeout: Option<std::time::Duration>,
    /// `continue_on_error` (`= false` turns a runner's `true` off).
    pub(crate) continue_on_error: Option<bool>,
    /// `behaviors(..)`: behavior values around every step (the context's),
    /// outermost first. A workflow's `timeout` and `retry` are copied onto
    /// its steps instead.
    pub(crate) behaviors: Vec<syn::Expr>,
}

/// When a recurring workflow runs.
pub(crate) struct Schedule {
    pub(crate) cadence: Cadence,
    pub(crate) run_immediately: bool,
    /// Whether missed ticks catch up with the latest (`catch_up = "latest"`).
    pub(crate) catch_up_latest: bool,
}

/// How a schedule's ticks are spaced.
pub(crate) enum Cadence {
    Every(std::time::Duration),
    /// The expression and its time zone, both checked.
    Cron(String, Option<String>),
}

/// A durable workflow's settings.
pub(crate) struct Durability {
    pub(crate) version: Option<String>,
}

/// One `#[step]` method.
pub(crate) struct Step {
    pub(crate) kind: Kind,
    pub(crate) title: String,
    pub(crate) method: Ident,
    pub(crate) has_receiver: bool,
    pub(crate) input: Input,
    pub(crate) output: Output,
    pub(crate) is_async: bool,
    /// Per-step behaviors, outermost first.
    pub(crate) behaviors: Vec<BehaviorOption>,
    /// Whether it takes `&WorkflowContext` first: its run's context.
    pub(crate) workflow_ctx: bool,
    /// Whether it takes `&StepCtx` before its input.
    pub(crate) step_ctx: bool,
    /// `#[step(transactional)]`: the transaction type `T` of its `&mut T`.
    pub(crate) tx: Option<Type>,
    /// `#[step(replayable)]`: the context's behaviors may run it again.
    pub(crate) replayable: bool,
    /// Whether its `retry` is the workflow's (`#[workflow(retry(..))]`).
    pub(crate) inherited_retry: bool,
    /// `compensate = method`: what undoes it when a later step fails.
    pub(crate) compensation: Option<Compensation>,
}

/// A `#[compensation]` method, as a step names it.
#[derive(Clone)]
pub(crate) struct Compensation {
    pub(crate) title: String,
    pub(crate) method: Ident,
    pub(crate) has_receiver: bool,
    /// Whether it takes `&StepCtx` before its input (durable only).
    pub(crate) step_ctx: bool,
    /// What it takes: its step's output (`None`: it takes nothing).
    pub(crate) input: Option<Type>,
    /// The whole `Result<(), E>` type, when it returns one.
    pub(crate) fallible: Option<Type>,
    pub(crate) is_async: bool,
    /// Its own behaviors, outermost first.
    pub(crate) behaviors: Vec<BehaviorOption>,
}

/// How a step takes the previous step's value.
pub(crate) enum Input {
    /// It takes nothing (a first step, or a `finally` that needs no value).
    Nothing,
    /// By value: `order: Order`.
    Value(Type),
    /// By reference, as `then` steps do: `order: &Order` (holds `Order`).
    Ref(Type),
    /// A `finally` step's outcome: `Result<&Order, &WorkflowError>` (holds
    /// `Order`).
    Outcome(Type),
}

impl Input {
    pub(crate) fn ty(&self) -> Option<&Type> {
        match self {
            Input::Nothing => None,
            Input::Value(ty) | Input::Ref(ty) | Input::Outcome(ty) => Some(ty),
        }
    }
}

/// What a step returns.
pub(crate) enum Output {
    /// `()`, written or not.
    Unit,
    /// A plain value.
    Value(Type),
    /// `Result<ok, _>` (any path ending in `Result`).
    Fallible { ok: Type, full: Box<Type> },
}

impl Output {
    pub(crate) fn is_fallible(&self) -> bool {
        matches!(self, Output::Fallible { .. })
    }
}

impl Step {
    /// Whether a behavior will run the step more than once.
    pub(crate) fn retries(&self) -> bool {
        self.behaviors
            .iter()
            .any(|b| matches!(b, BehaviorOption::Retry { .. }))
    }

    /// Whether its body may run more than once: it has `retry`, or is
    /// `replayable` for the context's behaviors. Its input is copied for
    /// each run, so it must be `Clone`.
    pub(crate) fn may_run_again(&self) -> bool {
        self.retries() || self.replayable
    }

    /// Whether a type-wide retry may run this value step again though it
    /// is neither `retry` nor `replayable`: `Some(Some(ty))` when its input
    /// `ty` is `Clone`, `Some(None)` for a first step taking nothing.
    /// `held` says whether the step's body holds its input so it can copy
    /// it (a durable workflow's first step does not).
    pub(crate) fn replays_if_clone(&self, held: bool) -> Option<Option<&Type>> {
        if !held || self.may_run_again() || self.passes_value_on() {
            return None;
        }
        match &self.input {
            Input::Value(ty) => Some(Some(ty)),
            Input::Nothing => Some(None),
            Input::Ref(_) | Input::Outcome(_) => None,
        }
    }

    /// Whether a durable run journals its output: every step that makes
    /// the value (assertions and `finally` pass it on).
    pub(crate) fn journaled(&self) -> bool {
        !self.passes_value_on()
    }

    /// Whether the value passes through this step unchanged.
    pub(crate) fn passes_value_on(&self) -> bool {
        matches!(self.kind, Kind::Then | Kind::Finally)
    }
}

/// A `#[step]` free function.
pub(crate) struct FreeStep {
    pub(crate) kind: Kind,
    pub(crate) title: String,
    pub(crate) krate: Path,
    pub(crate) fallible: bool,
    /// The parameters' names, for input capture (`None` for patterns).
    pub(crate) params: Vec<Option<Ident>>,
    pub(crate) item: syn::ItemFn,
    pub(crate) ret: Type,
}

/// The generics for an impl of the runtime's traits on a `#[workflow]`
/// type: the block's own, plus the `Send + Sync + 'static` every workflow
/// needs, so a generic workflow's impl holds exactly where its type does
/// and a dependency that is not `Send` is reported where it is used.
pub(crate) fn impl_generics(generics: &syn::Generics, self_ty: &Type) -> syn::Generics {
    let mut generics = generics.clone();
    if !generics.params.is_empty() {
        generics
            .make_where_clause()
            .predicates
            .push(syn::parse_quote!(
                #self_ty: ::core::marker::Send + ::core::marker::Sync + 'static
            ));
    }
    generics
}
