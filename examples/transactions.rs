//! The guide's transaction management: a workflow in one SQLite
//! transaction, committed only when every step passed.
//!
//! `cargo run --example transactions -- --help`

use std::path::PathBuf;

use workflow_suite::orders::Item;
use workflow_suite::transactions::{Fault, place_order, setup, snapshot};

const HELP: &str = "transactions: one workflow, one transaction; rollback on any failure

USAGE: cargo run --example transactions -- [--db PATH]

  --db PATH   the SQLite file (default: a fresh file in the temp directory)
  --help      this text

Places four orders: one that succeeds, one for more than the stock, one
whose inventory step panics, one cancelled mid-run; prints the rows after each.";

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
    if db == scratch {
        std::fs::remove_file(&db)?;
    }
    Ok(())
}
