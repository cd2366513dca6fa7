use workflow_runtime::prelude::*;
#[derive(Clone)]
struct Receipt;
struct PlaceOrder;
impl PlaceOrder {
    fn order(&self, id: u32) -> u32 {
        id
    }
    async fn charge(&self, id: u32) -> Result<Receipt, std::io::Error> {
        let _ = id;
        Ok(Receipt)
    }
    fn ship(&self, receipt: Receipt) -> bool {
        let _ = receipt;
        true
    }
    async fn refund(&self, receipt: Receipt) -> Result<(), std::io::Error> {
        let _ = receipt;
        Ok(())
    }
}
impl ::workflow_runtime::WorkflowDefinition for PlaceOrder {
    type Input = u32;
    type Output = bool;
    const NAME: &'static str = "PlaceOrder";
    const STEPS: &'static [::workflow_runtime::StepMeta] = {
        use ::workflow_runtime::{
            StepKind, StepMeta, __private::{CloneProbe, NotClone as _},
        };
        &[
            StepMeta::new(StepKind::Given, "an order", "order")
                .input("u32")
                .output("u32")
                .is_async(false)
                .fallible(false)
                .replayable(CloneProbe::<u32>::CLONES)
                .produces::<u32>(),
            StepMeta::new(StepKind::When, "charge card", "charge")
                .input("u32")
                .output("Receipt")
                .is_async(true)
                .fallible(true)
                .replayable(CloneProbe::<u32>::CLONES)
                .produces::<Receipt>(),
            StepMeta::new(StepKind::When, "ship", "ship")
                .input("Receipt")
                .output("bool")
                .is_async(false)
                .fallible(false)
                .replayable(CloneProbe::<Receipt>::CLONES)
                .produces::<bool>(),
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
            message = "step \"charge card\" returns `{Self}`, whose error cannot become a workflow error",
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
            message = "step \"charge card\" is undone by compensation \"refund\", which gets a copy of its output: `{Self}` must be `Clone`",
            label = "this step's output is `{Self}`, which is not `Clone`",
            note = "derive or implement `Clone` for `{Self}`, or return an `Arc` of it"
        )]
        trait ChargeKept {
            const CLONE: () = ();
        }
        #[diagnostic::do_not_recommend]
        impl<T: ::core::clone::Clone> ChargeKept for T {}
        let () = <Receipt as ChargeKept>::CLONE;
        #[diagnostic::on_unimplemented(
            message = "compensation \"refund\" takes `{T}`, but step \"charge card\", which it undoes, produces `{Self}`",
            label = "expected `{Self}`, the output of step \"charge card\"",
            note = "a compensation takes the output of the step it undoes (the `Ok` type of a fallible step)"
        )]
        trait RefundInput<T> {
            fn checked(self) -> T;
        }
        impl<T> RefundInput<T> for T {
            fn checked(self) -> T {
                self
            }
        }
        #[diagnostic::on_unimplemented(
            message = "compensation \"refund\" returns `{Self}`, whose error cannot become a workflow error",
            label = "the error type must implement `std::error::Error + Send + Sync + 'static`"
        )]
        trait RefundResult {
            fn checked(
                self,
            ) -> ::workflow_runtime::__private::Result<
                (),
                ::workflow_runtime::__private::StepError,
            >;
        }
        #[diagnostic::do_not_recommend]
        impl<E> RefundResult for ::workflow_runtime::__private::Result<(), E>
        where
            E: ::core::convert::Into<::workflow_runtime::__private::StepError>,
        {
            fn checked(
                self,
            ) -> ::workflow_runtime::__private::Result<
                (),
                ::workflow_runtime::__private::StepError,
            > {
                self.map_err(::core::convert::Into::into)
            }
        }
        Workflow::__given_with(ctx, "an order", input, move |input| self.order(input))
            .__probe()
            .__declared()
            .try_when_async(
                "charge card",
                move |value| async move {
                    <_ as ChargeResult<Receipt>>::checked(self.charge(value).await)
                },
            )
            .__probe()
            .__declared()
            .compensate_by(
                "refund",
                ::workflow_runtime::__private::Undo::new(move |value| async move {
                    <_ as RefundResult>::checked(
                        self.refund(<_ as RefundInput<Receipt>>::checked(value)).await,
                    )
                }),
                {
                    use ::workflow_runtime::__private::{Keep as _, KeepNever as _};
                    (&&::workflow_runtime::__private::KeepProbe::<Receipt>::default())
                        .keeper()
                },
            )
            .compensation_with(::workflow_runtime::behavior::Retry::max_attempts(3u32))
            .when("ship", move |value| self.ship(value))
            .__probe()
            .__declared()
            .result()
    }
}
#[allow(dead_code)]
impl PlaceOrder {
    ///The step "an order", for a test's stand-in (`ContextBuilder::stand_in`), which takes `&()`: the chain starts from nothing.
    pub const ORDER: ::workflow_runtime::StepRef<(), u32> = ::workflow_runtime::StepRef::new(
        "PlaceOrder",
        "an order",
    );
    ///The step "charge card", for a test's stand-in (`ContextBuilder::stand_in`).
    pub const CHARGE: ::workflow_runtime::StepRef<u32, Receipt> = ::workflow_runtime::StepRef::new(
        "PlaceOrder",
        "charge card",
    );
    ///The step "ship", for a test's stand-in (`ContextBuilder::stand_in`).
    pub const SHIP: ::workflow_runtime::StepRef<Receipt, bool> = ::workflow_runtime::StepRef::new(
        "PlaceOrder",
        "ship",
    );
}
