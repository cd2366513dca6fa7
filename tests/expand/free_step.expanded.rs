//! `#[step]` on free functions, sync and async.
async fn process_payment(order: Order) -> Result<Order, PaymentError> {
    static __SITE: ::workflow_runtime::__private::StepSite = ::workflow_runtime::__private::StepSite {
        kind: ::workflow_runtime::__private::StepKind::When,
        title: "process payment",
    };
    let __step = ::workflow_runtime::__private::FreeStep::enter(&__SITE);
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
    static __SITE: ::workflow_runtime::__private::StepSite = ::workflow_runtime::__private::StepSite {
        kind: ::workflow_runtime::__private::StepKind::When,
        title: "apply discount",
    };
    let __step = ::workflow_runtime::__private::FreeStep::enter(&__SITE);
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
