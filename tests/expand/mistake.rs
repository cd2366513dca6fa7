//! A mistake: the item comes back unchanged (minus `#[step]`) beside one
//! `compile_error!`, with a stub `WorkflowDefinition` impl whose body never
//! runs, so code that uses the workflow raises no further errors.

struct Orders;

#[workflow]
impl Orders {
    #[step(given = "an order")]
    fn order(&mut self, order: Order) -> Order {
        order
    }
}
