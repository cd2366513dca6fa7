use workflow_runtime::prelude::*;

#[derive(Clone)]
struct Receipt;
struct PlaceOrder;

#[workflow]
impl PlaceOrder {
    #[step(given = "an order")]
    fn order(&self, id: u32) -> u32 {
        id
    }

    #[step(when = "charge card", compensate = refund)]
    async fn charge(&self, id: u32) -> Result<Receipt, std::io::Error> {
        let _ = id;
        Ok(Receipt)
    }

    #[step(when = "ship")]
    fn ship(&self, receipt: Receipt) -> bool {
        let _ = receipt;
        true
    }

    #[compensation(retry(max_attempts = 3))]
    async fn refund(&self, receipt: Receipt) -> Result<(), std::io::Error> {
        let _ = receipt;
        Ok(())
    }
}
