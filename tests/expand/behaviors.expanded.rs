//! Per-step behaviors, outermost first as written.
struct Payments;
impl Payments {
    fn order(&self, order: Order) -> Order {
        order
    }
    async fn charge(&self, order: Order) -> Result<Order, PaymentError> {
        bank().charge(order).await
    }
    async fn receipt(&self, order: Order) -> Result<Receipt, PaymentError> {
        bank().receipt(order).await
    }
}
impl ::workflow_runtime::WorkflowDefinition for Payments {
    type Input = Order;
    type Output = Receipt;
    const NAME: &'static str = "Payments";
    const STEPS: &'static [::workflow_runtime::StepMeta] = {
        use ::workflow_runtime::{
            StepKind, StepMeta, __private::{CloneProbe, NotClone as _},
        };
        &[
            StepMeta::new(StepKind::Given, "an order", "order")
                .input("Order")
                .output("Order")
                .is_async(false)
                .fallible(false)
                .replayable(CloneProbe::<Order>::CLONES)
                .produces::<Order>(),
            StepMeta::new(StepKind::When, "charged", "charge")
                .input("Order")
                .output("Order")
                .is_async(true)
                .fallible(true)
                .replayable(true)
                .produces::<Order>(),
            StepMeta::new(StepKind::When, "receipted", "receipt")
                .input("Order")
                .output("Receipt")
                .is_async(true)
                .fallible(true)
                .replayable(CloneProbe::<Order>::CLONES)
                .produces::<Receipt>(),
        ]
    };
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
        use ::workflow_runtime::__private::{
            DeclareOnce as _, DeclareReplays as _, IntoProbe as _, RetryFallback as _,
            RetryWithReplay as _, Workflow,
        };
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
            let () = <Order as charge>::CLONE;
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
        #[diagnostic::on_unimplemented(
            message = "step \"receipted\" returns `{Self}`, whose error cannot become a workflow error",
            label = "the error type must implement `std::error::Error + Send + Sync + 'static`"
        )]
        trait ReceiptResult<T> {
            fn checked(
                self,
            ) -> ::workflow_runtime::__private::Result<
                T,
                ::workflow_runtime::__private::StepError,
            >;
        }
        #[diagnostic::do_not_recommend]
        impl<T, E> ReceiptResult<T> for ::workflow_runtime::__private::Result<T, E>
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
                let flow = Workflow::__given_with(
                        ctx,
                        "an order",
                        input,
                        move |input| self.order(input),
                    )
                    .__probe()
                    .__declared()
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
                                        <_ as ChargeResult<
                                            Order,
                                        >>::checked(self.charge(value).await)
                                    },
                                )
                                .value_behaviors(),
                        )
                        .__retry(
                            ::workflow_runtime::behavior::Retry::max_attempts(3u32)
                                .backoff(::core::time::Duration::from_nanos(100000000u64))
                                .jitter(true),
                        )
                }
                    .timeout(::core::time::Duration::from_nanos(30000000000u64))
                    .circuit_breaker(
                        ::workflow_runtime::__private::breaker(
                            ctx,
                            "payments",
                            ::core::option::Option::Some(5u32),
                            ::core::option::Option::Some(
                                ::core::time::Duration::from_nanos(60000000000u64),
                            ),
                        ),
                    )
                    .overridable()
                    .__step()
                    .await;
                let flow = Workflow::__after(ctx, flow)
                    .try_when_async(
                        "receipted",
                        move |value| async move {
                            <_ as ReceiptResult<
                                Receipt,
                            >>::checked(self.receipt(value).await)
                        },
                    )
                    .value_behaviors()
                    .__probe()
                    .__replayable_for_retries()
                    .__with(Fallback::to(|_| Some(Receipt::pending())))
                    .__with(Logging)
                    .overridable()
                    .__step()
                    .await;
                flow
            },
        )
    }
}
#[allow(dead_code)]
impl Payments {
    ///The step "an order", for a test's stand-in (`ContextBuilder::stand_in`), which takes `&()`: the chain starts from nothing.
    pub const ORDER: ::workflow_runtime::StepRef<(), Order> = ::workflow_runtime::StepRef::new(
        "Payments",
        "an order",
    );
    ///The step "charged", for a test's stand-in (`ContextBuilder::stand_in`).
    pub const CHARGE: ::workflow_runtime::StepRef<Order, Order> = ::workflow_runtime::StepRef::new(
        "Payments",
        "charged",
    );
    ///The step "receipted", for a test's stand-in (`ContextBuilder::stand_in`).
    pub const RECEIPT: ::workflow_runtime::StepRef<Order, Receipt> = ::workflow_runtime::StepRef::new(
        "Payments",
        "receipted",
    );
}
