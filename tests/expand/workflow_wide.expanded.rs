//! Options and behaviors for every step, on the definition: the options
//! refine a runner's defaults, `timeout` and `retry` go on each step that
//! takes behaviors (a step's own replaces them in place: `charge` keeps a
//! timeout per attempt), `behaviors(..)` wrap
//! every step from the context.
struct Payments;
impl Payments {
    fn amount(&self, cents: u64) -> u64 {
        cents
    }
    async fn charge(&self, cents: u64) -> Result<u64, PaymentError> {
        Ok(cents)
    }
    fn positive(&self, cents: &u64) -> bool {
        *cents > 0
    }
}
impl ::workflow_runtime::WorkflowDefinition for Payments {
    type Input = u64;
    type Output = u64;
    const NAME: &'static str = "Payments";
    const STEPS: &'static [::workflow_runtime::StepMeta] = {
        use ::workflow_runtime::{StepKind, StepMeta};
        &[
            StepMeta::new(StepKind::Given, "an amount", "amount")
                .input("u64")
                .output("u64")
                .is_async(false)
                .fallible(false)
                .replayable(true)
                .produces::<u64>(),
            StepMeta::new(StepKind::When, "charged", "charge")
                .input("u64")
                .output("u64")
                .is_async(true)
                .fallible(true)
                .replayable(true)
                .produces::<u64>(),
            StepMeta::new(StepKind::Then, "charged something", "positive")
                .input("u64")
                .output("u64")
                .is_async(false)
                .fallible(false)
                .replayable(false),
        ]
    };
    fn context() -> ::workflow_runtime::ContextBuilder {
        ::workflow_runtime::__private::default_context::<Self>()
            .__refine_options(|options| {
                options
                    .step_timeout(::core::time::Duration::from_nanos(30000000000u64))
                    .continue_on_error(true)
            })
            .behavior(Tracing)
            .behavior(Metrics)
    }
    fn run<'a>(
        &'a self,
        ctx: &'a ::workflow_runtime::WorkflowContext,
        input: Self::Input,
    ) -> impl ::workflow_runtime::__private::Future<
        Output = ::workflow_runtime::__private::Result<
            Self::Output,
            ::workflow_runtime::WorkflowError,
        >,
    > + ::core::marker::Send + 'a {
        use ::workflow_runtime::__private::Workflow;
        {
            #[allow(non_camel_case_types)]
            #[diagnostic::on_unimplemented(
                message = "step \"an amount\" has the workflow's `retry` (`#[workflow(retry(..))]`), so it may run more than once: its input `{Self}` must be `Clone`",
                label = "this step's input is `{Self}`, which is not `Clone`",
                note = "derive or implement `Clone` for `{Self}`, or pass an `Arc` of it"
            )]
            trait amount {
                const CLONE: () = ();
            }
            #[diagnostic::do_not_recommend]
            impl<T: ::core::clone::Clone> amount for T {}
            let () = <u64 as amount>::CLONE;
        }
        {
            #[allow(non_camel_case_types)]
            #[diagnostic::on_unimplemented(
                message = "step \"charged\" has `retry`, so it may run more than once: its input `{Self}` must be `Clone`",
                label = "this step's input is `{Self}`, which is not `Clone`",
                note = "derive or implement `Clone` for `{Self}`, or pass an `Arc` of it"
            )]
            trait charge {
                const CLONE: () = ();
            }
            #[diagnostic::do_not_recommend]
            impl<T: ::core::clone::Clone> charge for T {}
            let () = <u64 as charge>::CLONE;
        }
        #[diagnostic::on_unimplemented(
            message = "step \"charged\" returns `{Self}`, whose error cannot become a workflow error",
            label = "the error type must implement `std::error::Error + Send + Sync + 'static`"
        )]
        trait ChargeResult<T> {
            fn checked(
                self,
            ) -> ::workflow_runtime::__private::Result<
                T,
                ::workflow_runtime::__private::StepError,
            >;
        }
        #[diagnostic::do_not_recommend]
        impl<T, E> ChargeResult<T> for ::workflow_runtime::__private::Result<T, E>
        where
            E: ::core::convert::Into<::workflow_runtime::__private::StepError>,
        {
            fn checked(
                self,
            ) -> ::workflow_runtime::__private::Result<
                T,
                ::workflow_runtime::__private::StepError,
            > {
                self.map_err(::core::convert::Into::into)
            }
        }
        ::workflow_runtime::__private::straight(
            ctx,
            async move {
                let flow = {
                    use ::workflow_runtime::__private::{
                        RetryFallback as _, RetryWithReplay as _,
                    };
                    ::workflow_runtime::__private::ReplayProbe::new(
                            Workflow::new(ctx)
                                .when(
                                    "an amount",
                                    move |()| {
                                        let input = {
                                            use ::workflow_runtime::__private::{
                                                Again as _, AgainNever as _,
                                            };
                                            (&&::workflow_runtime::__private::Probe(&input)).again()
                                        };
                                        self.amount(input)
                                    },
                                )
                                .kind(::workflow_runtime::StepKind::Given)
                                .value_behaviors(),
                        )
                        .__retry(::workflow_runtime::behavior::Retry::max_attempts(3u32))
                }
                    .timeout(::core::time::Duration::from_nanos(1000000000u64))
                    .overridable()
                    .__step()
                    .await;
                let flow = {
                    use ::workflow_runtime::__private::{
                        RetryFallback as _, RetryWithReplay as _,
                    };
                    ::workflow_runtime::__private::ReplayProbe::new(
                            Workflow::__after(ctx, flow)
                                .try_when_async(
                                    "charged",
                                    move |value| async move {
                                        <_ as ChargeResult<u64>>::checked(self.charge(value).await)
                                    },
                                )
                                .value_behaviors(),
                        )
                        .__retry(::workflow_runtime::behavior::Retry::max_attempts(5u32))
                }
                    .timeout(::core::time::Duration::from_nanos(1000000000u64))
                    .overridable()
                    .__step()
                    .await;
                let flow = Workflow::__after(ctx, flow)
                    .then("charged something", move |value| self.positive(value))
                    .__step()
                    .await;
                flow
            },
        )
    }
}
#[allow(dead_code)]
impl Payments {
    ///The step "an amount", for a test's stand-in (`ContextBuilder::stand_in`), which takes `&()`: the chain starts from nothing.
    pub const AMOUNT: ::workflow_runtime::StepRef<(), u64> = ::workflow_runtime::StepRef::new(
        "Payments",
        "an amount",
    );
    ///The step "charged", for a test's stand-in (`ContextBuilder::stand_in`).
    pub const CHARGE: ::workflow_runtime::StepRef<u64, u64> = ::workflow_runtime::StepRef::new(
        "Payments",
        "charged",
    );
}
