//! `#[step]` on free functions, sync and async.
async fn process_payment(order: Order) -> Result<Order, PaymentError> {
    static __STEP: ::workflow_runtime::StepMeta = ::workflow_runtime::StepMeta::new(
            ::workflow_runtime::StepKind::When,
            "process payment",
            "process_payment",
        )
        .input("Order")
        .output("Order")
        .is_async(true)
        .fallible(true);
    let __step = ::workflow_runtime::__private::FreeStep::enter(&__STEP);
    let __input = __step
        .capture(|| {
            use ::workflow_runtime::__private::{Describe as _, DescribeNothing as _};
            ::workflow_runtime::__private::join_described([
                (&&::workflow_runtime::__private::Probe(&order)).describe(),
            ])
        });
    __step
        .run_async(
            __input,
            ::workflow_runtime::__private::result_outcome,
            ::workflow_runtime::__private::typed_future::<
                Result<Order, PaymentError>,
                _,
            >(async move { gateway().charge(order).await }),
            |__out| {
                use ::workflow_runtime::__private::{Describe as _, DescribeNothing as _};
                (&&::workflow_runtime::__private::Probe(__out)).describe()
            },
        )
        .await
}
fn apply_discount(order: Order, percent: u64) -> Order {
    static __STEP: ::workflow_runtime::StepMeta = ::workflow_runtime::StepMeta::new(
            ::workflow_runtime::StepKind::When,
            "apply discount",
            "apply_discount",
        )
        .input("Order, u64")
        .output("Order")
        .is_async(false)
        .fallible(false);
    let __step = ::workflow_runtime::__private::FreeStep::enter(&__STEP);
    let __input = __step
        .capture(|| {
            use ::workflow_runtime::__private::{Describe as _, DescribeNothing as _};
            ::workflow_runtime::__private::join_described([
                (&&::workflow_runtime::__private::Probe(&order)).describe(),
                (&&::workflow_runtime::__private::Probe(&percent)).describe(),
            ])
        });
    __step
        .run(
            __input,
            ::workflow_runtime::__private::plain_outcome,
            move || -> Order {
                Order {
                    cents: order.cents * (100 - percent) / 100,
                    ..order
                }
            },
            |__out| {
                use ::workflow_runtime::__private::{Describe as _, DescribeNothing as _};
                (&&::workflow_runtime::__private::Probe(__out)).describe()
            },
        )
}
