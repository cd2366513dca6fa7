//! The active step: which step the code running on this thread belongs to,
//! so `#[step]` functions can record themselves, as that step's children,
//! without being handed the context.
//!
//! The chain and [`Scoped`] each own an [`Active`] and lend it to the
//! thread only while they poll: it is swapped in before and back out after
//! (during unwinding too), so nothing outlives the poll that set it.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::WorkflowContext;
use super::record::StepId;

thread_local! {
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
}

/// A context, and the step in it whose body is running.
#[derive(Clone, Debug)]
pub(crate) struct Active {
    pub(crate) ctx: WorkflowContext,
    pub(crate) step: Option<StepId>,
}

impl Active {
    pub(crate) fn new(ctx: WorkflowContext, step: Option<StepId>) -> Self {
        Active { ctx, step }
    }
}

#[inline]
fn swap(slot: &mut Option<Active>) {
    ACTIVE.with(|active| std::mem::swap(&mut *active.borrow_mut(), slot));
}

/// Runs `f` with `slot`'s step active on this thread, then puts the
/// previous one back and `slot`'s own back in `slot`.
#[inline]
pub(crate) fn enter<R>(slot: &mut Option<Active>, f: impl FnOnce() -> R) -> R {
    struct Restore<'s>(&'s mut Option<Active>);
    impl Drop for Restore<'_> {
        #[inline]
        fn drop(&mut self) {
            swap(self.0);
        }
    }
    swap(slot);
    let _restore = Restore(slot);
    f()
}

/// The active step, if any.
pub(crate) fn current() -> Option<Active> {
    ACTIVE.with(|active| active.borrow().clone())
}

impl WorkflowContext {
    /// Calls `f` with the context active on this thread, if any: the
    /// context of the step being polled, or of a [`scope`](Self::scope).
    ///
    /// ```
    /// use workflow_runtime::WorkflowContext;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// assert!(WorkflowContext::with_current(|c| c.is_none()));
    /// let ctx = WorkflowContext::new("Scoped");
    /// let name = ctx
    ///     .scope(async { WorkflowContext::with_current(|c| c.map(|c| c.name().to_owned())) })
    ///     .await;
    /// assert_eq!(name.as_deref(), Some("Scoped"));
    /// # }
    /// ```
    pub fn with_current<R>(f: impl FnOnce(Option<&WorkflowContext>) -> R) -> R {
        f(current().as_ref().map(|active| &active.ctx))
    }

    /// A handle to the active context, if any.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// assert!(WorkflowContext::current().is_none());
    /// ```
    pub fn current() -> Option<WorkflowContext> {
        current().map(|active| active.ctx)
    }

    /// Runs `future` with this context active on whichever thread polls it,
    /// so the `#[step]` functions it calls record into this context.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = WorkflowContext::new("W");
    /// let inside = ctx.scope(async { WorkflowContext::current().is_some() }).await;
    /// assert!(inside);
    /// # }
    /// ```
    pub fn scope<F: Future>(&self, future: F) -> Scoped<F> {
        Scoped {
            active: Some(Active::new(self.clone(), None)),
            future,
        }
    }
}

pin_project! {
    /// The future of [`WorkflowContext::scope`].
    pub struct Scoped<F> {
        active: Option<Active>,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        enter(this.active, || this.future.poll(cx))
    }
}
