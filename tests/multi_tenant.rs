//! Tenant isolation over real HTTP: a request for another tenant's order
//! is refused and nothing about it leaks in the body.

use workflow_suite::multi_tenant::{Tenant, TenantApp};

async fn start() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let db = std::env::temp_dir().join(format!("tenants-{}-{n}.db", std::process::id()));
    // The store runs in WAL mode: a stale -wal of an earlier run with the
    // same pid would be replayed into the fresh file.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let app = TenantApp::new(&db).await.unwrap();
    for (id, name) in [
        ("acme", "Acme Corporation"),
        ("globex", "Globex Corporation"),
    ] {
        app.add_tenant(&Tenant {
            id: id.into(),
            name: name.into(),
        })
        .await
        .unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app.router()).await });
    base
}

#[tokio::test]
async fn tenants_never_see_each_others_orders() {
    let base = start().await;
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{base}/api/orders"))
        .header("x-tenant", "acme")
        .json(&serde_json::json!({"note": "acme's secret plans"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();

    let own = client
        .get(format!("{base}{location}"))
        .header("x-tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let order: serde_json::Value = own.json().await.unwrap();
    assert_eq!(order["note"], "acme's secret plans");
    assert_eq!(order["tenant_id"], "acme");
    // The name comes from the run's context (`tenantName`), which the
    // runner's context factory filled from the tenant directory.
    assert_eq!(order["tenant_name"], "Acme Corporation");

    let other = client
        .get(format!("{base}{location}"))
        .header("x-tenant", "globex")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
    let body = other.text().await.unwrap();
    assert!(!body.contains("secret") && !body.contains("acme"), "{body}");

    let anonymous = client
        .get(format!("{base}{location}"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 400);

    // A tenant the directory does not know reads nothing, and cannot write.
    let stranger = client
        .get(format!("{base}{location}"))
        .header("x-tenant", "initech")
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 403);
    let body = stranger.text().await.unwrap();
    assert!(
        body.contains("unknown tenant") && !body.contains("secret"),
        "{body}"
    );
    let refused = client
        .post(format!("{base}/api/orders"))
        .header("x-tenant", "initech")
        .json(&serde_json::json!({"note": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    let missing = client
        .get(format!("{base}/api/orders/999"))
        .header("x-tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn the_guides_processor_validates_the_tenant_processes_and_checks_completed() {
    let base = start().await;
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{base}/api/orders"))
        .header("x-tenant", "acme")
        .json(&serde_json::json!({"note": "ten anvils"}))
        .send()
        .await
        .unwrap();
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let status = |tenant: &'static str| {
        let (client, url) = (client.clone(), format!("{base}{location}"));
        async move {
            let order: serde_json::Value = client
                .get(url)
                .header("x-tenant", tenant)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            order["status"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(status("acme").await, "Pending");

    // Another tenant's processor fails "validate tenant": 403, nothing done.
    let refused = client
        .post(format!("{base}{location}/process"))
        .header("x-tenant", "globex")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(status("acme").await, "Pending");

    // Its own: processed, and "completed" held.
    let processed = client
        .post(format!("{base}{location}/process"))
        .header("x-tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(processed.status(), 200);
    let order: serde_json::Value = processed.json().await.unwrap();
    assert_eq!(order["status"], "Complete");
    assert_eq!(status("acme").await, "Complete");
}
