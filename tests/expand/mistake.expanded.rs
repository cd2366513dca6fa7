//! A mistake: the item comes back unchanged (minus `#[step]`) beside one
//! `compile_error!`, with a stub `WorkflowDefinition` impl whose body never
//! runs, so code that uses the workflow raises no further errors.
struct Orders;
impl Orders {
    fn order(&mut self, order: Order) -> Order {
        order
    }
}
impl ::workflow_runtime::WorkflowDefinition for Orders {
    type Input = ();
    type Output = ();
    const NAME: &'static str = "Orders";
    const STEPS: &'static [::workflow_runtime::StepMeta] = &[];
    fn run<'a>(
        &'a self,
        _: &'a ::workflow_runtime::WorkflowContext,
        _: Self::Input,
    ) -> impl ::workflow_runtime::__private::Future<
        Output = ::workflow_runtime::__private::Result<
            Self::Output,
            ::workflow_runtime::WorkflowError,
        >,
    > + ::core::marker::Send + 'a {
        async { ::core::unreachable!("`#[workflow]` reported an error at compile time") }
    }
}
::core::compile_error! {
    "step \"an order\" must take `&self`: a workflow's steps share it, so none may own or mutate it"
}
