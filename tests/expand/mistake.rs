//! A mistake: the item comes back unchanged (minus `#[step]`) beside one
//! `compile_error!`.

struct Orders;

#[workflow]
impl Orders {
    #[step(given = "an order")]
    fn order(&mut self, order: Order) -> Order {
        order
    }
}
