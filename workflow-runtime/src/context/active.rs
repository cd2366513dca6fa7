//! The active context: which context the step being polled on this thread
//! belongs to, so `#[step]` functions can record themselves without being
//! handed the context.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::WorkflowContext;

thread_local! {
    static ACTIVE: Cell<*const WorkflowContext> = const { Cell::new(ptr::null()) };
    // Set while the chain calls a step body, so a `#[step]` function that
    // *is* the body leaves the recording to the chain.
    static DIRECT: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with `ctx` active on this thread, restoring the previous one
/// afterwards, during unwinding too.
pub(crate) fn enter<R>(ctx: &WorkflowContext, f: impl FnOnce() -> R) -> R {
    struct Restore(*const WorkflowContext);
    impl Drop for Restore {
        fn drop(&mut self) {
            ACTIVE.with(|a| a.set(self.0));
        }
    }
    let _restore = Restore(ACTIVE.with(|a| a.replace(ctx)));
    f()
}

/// Runs `f` with `ctx` active and marked as calling a step body directly.
pub(crate) fn enter_direct<R>(ctx: &WorkflowContext, f: impl FnOnce() -> R) -> R {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            DIRECT.with(|d| d.set(false));
        }
    }
    DIRECT.with(|d| d.set(true));
    let _clear = Clear;
    enter(ctx, f)
}

/// Whether the caller is the body the chain called directly; asking clears
/// the mark, so steps nested inside it record themselves.
pub(crate) fn take_direct() -> bool {
    DIRECT.with(|d| d.replace(false))
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
        let current = ACTIVE.with(Cell::get);
        // SAFETY: the pointer is non-null only inside `enter`, which holds a
        // borrow of the context for as long as it is set; `f` cannot keep the
        // reference, since `R` is chosen before its lifetime is known.
        f(unsafe { current.as_ref() })
    }

    /// A handle to the active context, if any.
    ///
    /// ```
    /// # use workflow_runtime::WorkflowContext;
    /// assert!(WorkflowContext::current().is_none());
    /// ```
    pub fn current() -> Option<WorkflowContext> {
        Self::with_current(|c| c.cloned())
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
    pub fn scope<F: Future>(&self, future: F) -> Scoped<'_, F> {
        Scoped { ctx: self, future }
    }
}

pin_project! {
    /// The future of [`WorkflowContext::scope`].
    pub struct Scoped<'c, F> {
        ctx: &'c WorkflowContext,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Scoped<'_, F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        enter(this.ctx, || this.future.poll(cx))
    }
}
