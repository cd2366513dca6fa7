//! A workflow of sync and async, plain and fallible steps.
struct PendingOrderProcessor {
    payment: Arc<dyn PaymentGateway>,
}
/// Processes orders awaiting payment.
impl PendingOrderProcessor {
    fn pending(&self, order: Order) -> Order {
        order
    }
    async fn charge(&self, order: Order) -> Result<Order, PaymentError> {
        self.payment.charge(order).await
    }
    async fn save(&self, order: Order) -> Order {
        order
    }
    fn processed(&self, order: &Order) -> bool {
        order.paid
    }
}
impl ::workflow_runtime::WorkflowDefinition for PendingOrderProcessor {
    type Input = Order;
    type Output = Order;
    const NAME: &'static str = "PendingOrderProcessor";
    const DESCRIPTION: ::core::option::Option<&'static str> = ::core::option::Option::Some(
        "Processes orders awaiting payment.",
    );
    const STEPS: &'static [::workflow_runtime::StepMeta] = {
        use ::workflow_runtime::{
            StepKind, StepMeta, __private::{CloneProbe, NotClone as _},
        };
        &[
            StepMeta::new(StepKind::Given, "pending order", "pending")
                .input("Order")
                .output("Order")
                .is_async(false)
                .fallible(false)
                .replayable(CloneProbe::<Order>::CLONES)
                .produces::<Order>(),
            StepMeta::new(StepKind::When, "process payment", "charge")
                .input("Order")
                .output("Order")
                .is_async(true)
                .fallible(true)
                .replayable(CloneProbe::<Order>::CLONES)
                .produces::<Order>(),
            StepMeta::new(StepKind::When, "update status", "save")
                .input("Order")
                .output("Order")
                .is_async(true)
                .fallible(false)
                .replayable(CloneProbe::<Order>::CLONES)
                .produces::<Order>(),
            StepMeta::new(StepKind::Then, "processed", "processed")
                .input("Order")
                .output("Order")
                .is_async(false)
                .fallible(false)
                .replayable(false),
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
            DeclareOnce as _, DeclareReplays as _, IntoProbe as _, Workflow,
        };
        #[diagnostic::on_unimplemented(
            message = "step \"process payment\" returns `{Self}`, whose error cannot become a workflow error",
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
                let flow = Workflow::__given_with(
                        ctx,
                        "pending order",
                        input,
                        move |input| self.pending(input),
                    )
                    .__probe()
                    .__declared()
                    .__step()
                    .await;
                let flow = Workflow::__after(ctx, flow)
                    .try_when_async(
                        "process payment",
                        move |value| async move {
                            <_ as ChargeResult<Order>>::checked(self.charge(value).await)
                        },
                    )
                    .__probe()
                    .__declared()
                    .__step()
                    .await;
                let flow = Workflow::__after(ctx, flow)
                    .when_async("update status", move |value| self.save(value))
                    .__probe()
                    .__declared()
                    .__step()
                    .await;
                let flow = Workflow::__after(ctx, flow)
                    .then("processed", move |value| self.processed(value))
                    .__step()
                    .await;
                flow
            },
        )
    }
}
#[allow(dead_code)]
impl PendingOrderProcessor {
    ///The step "pending order", for a test's stand-in (`ContextBuilder::stand_in`), which takes `&()`: the chain starts from nothing.
    pub const PENDING: ::workflow_runtime::StepRef<(), Order> = ::workflow_runtime::StepRef::new(
        "PendingOrderProcessor",
        "pending order",
    );
    ///The step "process payment", for a test's stand-in (`ContextBuilder::stand_in`).
    pub const CHARGE: ::workflow_runtime::StepRef<Order, Order> = ::workflow_runtime::StepRef::new(
        "PendingOrderProcessor",
        "process payment",
    );
    ///The step "update status", for a test's stand-in (`ContextBuilder::stand_in`).
    pub const SAVE: ::workflow_runtime::StepRef<Order, Order> = ::workflow_runtime::StepRef::new(
        "PendingOrderProcessor",
        "update status",
    );
}
