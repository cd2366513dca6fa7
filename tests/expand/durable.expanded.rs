//! A durable workflow: journaled steps, a step key, a transactional step.
struct PendingOrderProcessor {
    bank: Bank,
}
impl PendingOrderProcessor {
    fn load(&self, id: OrderId) -> Order {
        Order::pending(id)
    }
    async fn charge(
        &self,
        step: &StepCtx,
        order: Order,
    ) -> Result<Receipt, PaymentError> {
        self.bank.charge(&order, step.key()).await
    }
    async fn save(
        &self,
        tx: &mut SqliteTx,
        receipt: Receipt,
    ) -> Result<Order, sqlx::Error> {
        receipt.save(tx).await
    }
    fn processed(&self, order: &Order) -> bool {
        order.paid
    }
}
impl ::workflow_runtime::WorkflowDefinition for PendingOrderProcessor {
    type Input = OrderId;
    type Output = Order;
    const NAME: &'static str = "PendingOrderProcessor";
    const STEPS: &'static [::workflow_runtime::StepMeta] = {
        use ::workflow_runtime::{
            StepKind, StepMeta, __private::{CloneProbe, NotClone as _},
        };
        &[
            StepMeta::new(StepKind::Given, "pending order", "load")
                .input("OrderId")
                .output("Order")
                .is_async(false)
                .fallible(false)
                .replayable(false)
                .produces::<Order>(),
            StepMeta::new(StepKind::When, "process payment", "charge")
                .input("Order")
                .output("Receipt")
                .is_async(true)
                .fallible(true)
                .replayable(true)
                .produces::<Receipt>(),
            StepMeta::new(StepKind::When, "update status", "save")
                .input("Receipt")
                .output("Order")
                .is_async(true)
                .fallible(true)
                .replayable(CloneProbe::<Receipt>::CLONES)
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
            IntoProbe as _, RetryFallback as _, RetryWithReplay as _, Workflow,
        };
        {
            #[allow(non_camel_case_types)]
            #[diagnostic::on_unimplemented(
                message = "step \"process payment\" has `retry`, so it may run more than once: its input `{Self}` must be `Clone`",
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
        #[diagnostic::on_unimplemented(
            message = "step \"update status\" returns `{Self}`, whose error cannot become a workflow error",
            label = "the error type must implement `std::error::Error + Send + Sync + 'static`"
        )]
        trait SaveResult<T> {
            fn checked(
                self,
            ) -> ::workflow_runtime::__private::Result<
                T,
                ::workflow_runtime::__private::StepError,
            >;
        }
        #[diagnostic::do_not_recommend]
        impl<T, E> SaveResult<T> for ::workflow_runtime::__private::Result<T, E>
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
                let flow = ::workflow_runtime::__private::Workflow::new(ctx)
                    .journaled_once(
                        ::workflow_runtime::StepKind::Given,
                        ::workflow_runtime::__private::Place {
                            index: 0u32,
                            title: "pending order",
                        },
                        <Self as ::workflow_runtime::__private::Durable>::CODECS.0,
                        move |_, ()| {
                            let value = input;
                            async move {
                                ::workflow_runtime::__private::Result::Ok(self.load(value))
                            }
                        },
                    )
                    .__step()
                    .await;
                let flow = {
                    use ::workflow_runtime::__private::{
                        RetryFallback as _, RetryWithReplay as _,
                    };
                    ::workflow_runtime::__private::ReplayProbe::new(
                            Workflow::__after(ctx, flow)
                                .journaled(
                                    ::workflow_runtime::StepKind::When,
                                    ::workflow_runtime::__private::Place {
                                        index: 1u32,
                                        title: "process payment",
                                    },
                                    <Self as ::workflow_runtime::__private::Durable>::CODECS.1,
                                    move |step, value| {
                                        async move {
                                            <_ as ChargeResult<
                                                Receipt,
                                            >>::checked(self.charge(&step, value).await)
                                        }
                                    },
                                ),
                        )
                        .__retry(
                            ::workflow_runtime::behavior::Retry::max_attempts(5u32)
                                .backoff(::core::time::Duration::from_nanos(1000000000u64)),
                        )
                }
                    .__step()
                    .await;
                let flow = Workflow::__after(ctx, flow)
                    .transacted::<
                        SqliteTx,
                        _,
                        _,
                        _,
                    >(
                        ::workflow_runtime::StepKind::When,
                        ::workflow_runtime::__private::Place {
                            index: 2u32,
                            title: "update status",
                        },
                        <Self as ::workflow_runtime::__private::Durable>::CODECS.2,
                        move |
                            _,
                            mut tx: ::workflow_runtime::__private::Held<SqliteTx>,
                            value|
                        {
                            async move {
                                let result = <_ as SaveResult<
                                    Order,
                                >>::checked(self.save(&mut tx, value).await);
                                (tx, result)
                            }
                        },
                    )
                    .__probe()
                    .__replayable_for_retries()
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
impl ::workflow_runtime::__private::Durable for PendingOrderProcessor {
    const FINGERPRINT: &'static str = "fce2bc4cd5fb0914";
    const VERSION: ::core::option::Option<&'static str> = ::core::option::Option::Some(
        "v2",
    );
    const INPUT: ::workflow_runtime::__private::ValueCodec<OrderId> = {
        #[diagnostic::on_unimplemented(
            message = "durable workflow \"PendingOrderProcessor\" takes `{Self}` (the input of step \"pending order\"), which is not `Serialize`",
            label = "durable runs journal this value",
            note = "derive `serde::Serialize` and `serde::Deserialize` for `{Self}`"
        )]
        trait LoadInputSerialize: ::core::marker::Sized {
            const ENCODE: ::workflow_runtime::__private::EncodeFn<Self>;
        }
        #[diagnostic::do_not_recommend]
        impl<T: ::workflow_runtime::__private::serde::Serialize> LoadInputSerialize
        for T {
            const ENCODE: ::workflow_runtime::__private::EncodeFn<T> = ::workflow_runtime::__private::encode::<
                T,
            >;
        }
        #[diagnostic::on_unimplemented(
            message = "durable workflow \"PendingOrderProcessor\" takes `{Self}` (the input of step \"pending order\"), which is not `Deserialize`",
            label = "durable runs journal this value",
            note = "derive `serde::Serialize` and `serde::Deserialize` for `{Self}`"
        )]
        trait LoadInputDeserialize: ::core::marker::Sized {
            const DECODE: ::workflow_runtime::__private::DecodeFn<Self>;
        }
        #[diagnostic::do_not_recommend]
        impl<
            T: ::workflow_runtime::__private::serde::de::DeserializeOwned,
        > LoadInputDeserialize for T {
            const DECODE: ::workflow_runtime::__private::DecodeFn<T> = ::workflow_runtime::__private::decode::<
                T,
            >;
        }
        ::workflow_runtime::__private::ValueCodec::new(
            <OrderId as LoadInputSerialize>::ENCODE,
            <OrderId as LoadInputDeserialize>::DECODE,
        )
    };
    const OUTPUT: ::workflow_runtime::__private::ValueCodec<Order> = <Self as ::workflow_runtime::__private::Durable>::CODECS
        .2;
    type Codecs = (
        ::workflow_runtime::__private::ValueCodec<Order>,
        ::workflow_runtime::__private::ValueCodec<Receipt>,
        ::workflow_runtime::__private::ValueCodec<Order>,
    );
    const CODECS: Self::Codecs = {
        #[diagnostic::on_unimplemented(
            message = "step \"pending order\" of durable workflow \"PendingOrderProcessor\" returns `{Self}`, which is not `Serialize`",
            label = "durable runs journal this value",
            note = "derive `serde::Serialize` and `serde::Deserialize` for `{Self}`"
        )]
        trait LoadOutputSerialize: ::core::marker::Sized {
            const ENCODE: ::workflow_runtime::__private::EncodeFn<Self>;
        }
        #[diagnostic::do_not_recommend]
        impl<T: ::workflow_runtime::__private::serde::Serialize> LoadOutputSerialize
        for T {
            const ENCODE: ::workflow_runtime::__private::EncodeFn<T> = ::workflow_runtime::__private::encode::<
                T,
            >;
        }
        #[diagnostic::on_unimplemented(
            message = "step \"pending order\" of durable workflow \"PendingOrderProcessor\" returns `{Self}`, which is not `Deserialize`",
            label = "durable runs journal this value",
            note = "derive `serde::Serialize` and `serde::Deserialize` for `{Self}`"
        )]
        trait LoadOutputDeserialize: ::core::marker::Sized {
            const DECODE: ::workflow_runtime::__private::DecodeFn<Self>;
        }
        #[diagnostic::do_not_recommend]
        impl<
            T: ::workflow_runtime::__private::serde::de::DeserializeOwned,
        > LoadOutputDeserialize for T {
            const DECODE: ::workflow_runtime::__private::DecodeFn<T> = ::workflow_runtime::__private::decode::<
                T,
            >;
        }
        #[diagnostic::on_unimplemented(
            message = "step \"process payment\" of durable workflow \"PendingOrderProcessor\" returns `{Self}`, which is not `Serialize`",
            label = "durable runs journal this value",
            note = "derive `serde::Serialize` and `serde::Deserialize` for `{Self}`"
        )]
        trait ChargeOutputSerialize: ::core::marker::Sized {
            const ENCODE: ::workflow_runtime::__private::EncodeFn<Self>;
        }
        #[diagnostic::do_not_recommend]
        impl<T: ::workflow_runtime::__private::serde::Serialize> ChargeOutputSerialize
        for T {
            const ENCODE: ::workflow_runtime::__private::EncodeFn<T> = ::workflow_runtime::__private::encode::<
                T,
            >;
        }
        #[diagnostic::on_unimplemented(
            message = "step \"process payment\" of durable workflow \"PendingOrderProcessor\" returns `{Self}`, which is not `Deserialize`",
            label = "durable runs journal this value",
            note = "derive `serde::Serialize` and `serde::Deserialize` for `{Self}`"
        )]
        trait ChargeOutputDeserialize: ::core::marker::Sized {
            const DECODE: ::workflow_runtime::__private::DecodeFn<Self>;
        }
        #[diagnostic::do_not_recommend]
        impl<
            T: ::workflow_runtime::__private::serde::de::DeserializeOwned,
        > ChargeOutputDeserialize for T {
            const DECODE: ::workflow_runtime::__private::DecodeFn<T> = ::workflow_runtime::__private::decode::<
                T,
            >;
        }
        #[diagnostic::on_unimplemented(
            message = "step \"update status\" of durable workflow \"PendingOrderProcessor\" returns `{Self}`, which is not `Serialize`",
            label = "durable runs journal this value",
            note = "derive `serde::Serialize` and `serde::Deserialize` for `{Self}`"
        )]
        trait SaveOutputSerialize: ::core::marker::Sized {
            const ENCODE: ::workflow_runtime::__private::EncodeFn<Self>;
        }
        #[diagnostic::do_not_recommend]
        impl<T: ::workflow_runtime::__private::serde::Serialize> SaveOutputSerialize
        for T {
            const ENCODE: ::workflow_runtime::__private::EncodeFn<T> = ::workflow_runtime::__private::encode::<
                T,
            >;
        }
        #[diagnostic::on_unimplemented(
            message = "step \"update status\" of durable workflow \"PendingOrderProcessor\" returns `{Self}`, which is not `Deserialize`",
            label = "durable runs journal this value",
            note = "derive `serde::Serialize` and `serde::Deserialize` for `{Self}`"
        )]
        trait SaveOutputDeserialize: ::core::marker::Sized {
            const DECODE: ::workflow_runtime::__private::DecodeFn<Self>;
        }
        #[diagnostic::do_not_recommend]
        impl<
            T: ::workflow_runtime::__private::serde::de::DeserializeOwned,
        > SaveOutputDeserialize for T {
            const DECODE: ::workflow_runtime::__private::DecodeFn<T> = ::workflow_runtime::__private::decode::<
                T,
            >;
        }
        (
            ::workflow_runtime::__private::ValueCodec::new(
                <Order as LoadOutputSerialize>::ENCODE,
                <Order as LoadOutputDeserialize>::DECODE,
            ),
            ::workflow_runtime::__private::ValueCodec::new(
                <Receipt as ChargeOutputSerialize>::ENCODE,
                <Receipt as ChargeOutputDeserialize>::DECODE,
            ),
            ::workflow_runtime::__private::ValueCodec::new(
                <Order as SaveOutputSerialize>::ENCODE,
                <Order as SaveOutputDeserialize>::DECODE,
            ),
        )
    };
}
