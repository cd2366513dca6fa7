//! The PostgreSQL store's own promises, on a throwaway server: instances
//! opening one database together migrate it once, and a database it cannot
//! reach is an error naming it, without its password.

use workflow_runtime::durable::{Backend, PostgresStore, RunRow};
use workflow_runtime::testing::TempPostgres;

#[tokio::test]
async fn instances_opening_together_migrate_once() {
    let pg = TempPostgres::start().expect("PostgreSQL starts");
    let url = pg.url();
    let opened = futures_like_join(
        (0..4)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { PostgresStore::open(&url).await })
            })
            .collect(),
    )
    .await;
    for store in &opened {
        assert!(store.is_ok(), "{:?}", store.as_ref().err());
    }
    let store = opened.into_iter().next().unwrap().unwrap();
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT version FROM workflow_schema ORDER BY version")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(versions, [1]);
    store
        .insert_run(&RunRow::new("r", "Pay", "f", b"1".to_vec()))
        .await
        .unwrap();
    assert_eq!(store.run("r").await.unwrap().unwrap().input, b"1");
}

/// Awaits every task.
async fn futures_like_join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test]
async fn an_unreachable_database_is_an_error_naming_it_without_its_password() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://app:s3cret@127.0.0.1:{port}/orders");
    let err = PostgresStore::open(&url).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&format!("postgres://app:***@127.0.0.1:{port}/orders")),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    assert!(message.contains("connecting"), "{message}");
}
