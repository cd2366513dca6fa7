//! A mistake: the item comes back unchanged (minus `#[step]`) beside one
//! `compile_error!`.
struct Orders;
impl Orders {
    fn order(&mut self, order: Order) -> Order {
        order
    }
}
::core::compile_error! {
    "step \"an order\" must take `&self`: a workflow's steps share it, so none may own or mutate it"
}
