//! The guide's transaction management side by side with a saga: a
//! workflow in one SQLite transaction, committed only when every step
//! passed; then the same order placed across two services (stock and card
//! payments) that no transaction spans, each change undone by its
//! compensation when shipping fails.
//!
//! `cargo run --example transactions -- --help`

use std::path::PathBuf;

use workflow_runtime::StepKind;
use workflow_suite::orders::Item;
use workflow_suite::saga::{Order, Payments, PlaceOrderSaga, Shipping, place_order_saga};
use workflow_suite::transactions::{Fault, place_order, setup, snapshot};

const HELP: &str = "transactions: one transaction for one database, compensation across two

USAGE: cargo run --example transactions -- [--db PATH]

  --db PATH   the SQLite file (default: a fresh file in the temp directory)
  --help      this text

Places four orders in one transaction: one that succeeds, one for more than
the stock, one whose inventory step panics, one cancelled mid-run; prints the
rows after each. Then places two orders as a saga across the stock and a
payments service: one that ships, one that no carrier takes, which refunds
the card and releases the stock.";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scratch = std::env::temp_dir().join(format!("transactions-{}.db", std::process::id()));
    let mut db = scratch.clone();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{HELP}");
                return Ok(());
            }
            "--db" => db = PathBuf::from(args.next().ok_or("--db needs a path")?),
            other => return Err(format!("unknown argument {other:?}; see --help").into()),
        }
    }
    setup(&db, &[("widget", 5)]).await?;
    let widgets = |n| {
        vec![Item {
            sku: "widget".into(),
            quantity: n,
            unit_cents: 100,
        }]
    };
    for (label, quantity, fault) in [
        ("2 widgets", 2, Fault::None),
        ("10 widgets (out of stock)", 10, Fault::None),
        ("1 widget, inventory panics", 1, Fault::PanicInInventory),
        (
            "1 widget, cancelled after saving",
            1,
            Fault::CancelAfterSave,
        ),
    ] {
        let outcome = match place_order(db.clone(), "c-1".into(), widgets(quantity), fault).await {
            Ok(id) => format!("committed order {id}"),
            Err(error) => format!("rolled back: {error}"),
        };
        let (orders, lines, stock) = snapshot(&db, "widget").await?;
        println!("{label:<34} {outcome}");
        println!(
            "{:<34} orders {orders}, lines {lines}, widgets in stock {stock}",
            ""
        );
    }

    println!();
    println!("saga: reserve stock -> charge card -> ship, across two services");
    let payments_db = db.with_extension("payments.db");
    for (label, shipping) in [
        ("1 widget, shipped", Shipping::Works),
        ("2 widgets, no carrier", Shipping::NoCarrier),
    ] {
        let saga = PlaceOrderSaga {
            stock: workflow_suite::db::open_pool(&db).await?,
            payments: Payments::open(&payments_db).await?,
            shipping,
        };
        let quantity = if shipping == Shipping::Works { 1 } else { 2 };
        let order = Order {
            customer: "c-2".into(),
            items: widgets(quantity),
        };
        let (result, ctx) = place_order_saga(&saga, order).await;
        let outcome = match result {
            Ok(shipment) => format!("shipped, paid with charge {}", shipment.charge),
            Err(error) => format!("undone: {error}"),
        };
        let undone: Vec<String> = ctx
            .steps()
            .into_iter()
            .filter(|step| step.kind == StepKind::Compensate)
            .map(|step| format!("{} ({})", step.title, step.outcome))
            .collect();
        let (charged, refunds) = saga.payments.totals().await?;
        let (_, _, stock) = snapshot(&db, "widget").await?;
        println!("{label:<34} {outcome}");
        if !undone.is_empty() {
            println!("{:<34} compensations: {}", "", undone.join(", "));
        }
        println!(
            "{:<34} widgets in stock {stock}, cents charged {charged}, refunds {refunds}",
            ""
        );
    }
    if db == scratch {
        std::fs::remove_file(&db)?;
        std::fs::remove_file(&payments_db)?;
    }
    Ok(())
}
