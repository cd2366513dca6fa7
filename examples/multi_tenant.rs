//! The guide's multi-tenancy behind an HTTP API: the `X-Tenant` header
//! reaches every workflow context; tenants never see each other's orders.
//!
//! `cargo run --example multi_tenant -- --help`

use std::net::SocketAddr;
use std::path::PathBuf;

use workflow_suite::multi_tenant::{Tenant, TenantApp};

const HELP: &str = "multi_tenant: tenant isolation through the workflow context

USAGE: cargo run --example multi_tenant -- [--addr HOST:PORT] [--db PATH]

  --addr HOST:PORT   where to listen (default 127.0.0.1:3001)
  --db PATH          the SQLite file (default tenants.db)
  --help             this text

Try:
  curl -i -X POST localhost:3001/api/orders -H 'x-tenant: acme' -H 'content-type: application/json' -d '{\"note\":\"hi\"}'
  curl -i localhost:3001/api/orders/1 -H 'x-tenant: acme'     # 200
  curl -i localhost:3001/api/orders/1 -H 'x-tenant: globex'   # 403, nothing else
  curl -i localhost:3001/api/orders/1 -H 'x-tenant: initech'  # 403, unknown tenant";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr: SocketAddr = "127.0.0.1:3001".parse()?;
    let mut db = PathBuf::from("tenants.db");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{HELP}");
                return Ok(());
            }
            "--addr" => addr = args.next().ok_or("--addr needs HOST:PORT")?.parse()?,
            "--db" => db = args.next().ok_or("--db needs a path")?.into(),
            other => return Err(format!("unknown argument {other:?}; see --help").into()),
        }
    }
    tracing_subscriber::fmt().init();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "multi-tenant API listening");
    let app = TenantApp::new(&db).await?;
    // The tenant directory: the tenants the `X-Tenant` header may name.
    for (id, name) in [
        ("acme", "Acme Corporation"),
        ("globex", "Globex Corporation"),
    ] {
        app.add_tenant(&Tenant {
            id: id.into(),
            name: name.into(),
        })
        .await?;
    }
    axum::serve(listener, app.router())
        .with_graceful_shutdown(workflow_runtime::host::stop_signal())
        .await?;
    Ok(())
}
