//! The workflow console mounted in the order API at `/workflows`, driven
//! over real HTTP as a browser (or an attacker's page) would: a run's data
//! is escaped wherever it shows, actions need the app's consent, and a
//! POST from another site is refused, with every action logged with who
//! did it.

use std::sync::{Arc, Mutex};

use workflow_runtime::durable::RunStatus;
use workflow_suite::order_api::OPERATOR_COOKIE;

#[allow(dead_code)] // each test binary uses part of it
mod console_server;
use console_server::{Server, ana, start};

impl Server {
    /// The confirmation page's CSRF token and the cookie that came with it.
    async fn token_for(&self, run: &str, operator_cookie: &str) -> (String, String) {
        let page = self
            .get(
                &format!("/workflows/confirm?action=cancel&id={run}"),
                Some(operator_cookie),
            )
            .await;
        assert_eq!(page.status(), 200);
        let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
        let csrf_cookie = cookie.split(';').next().unwrap().to_owned();
        let body = page.text().await.unwrap();
        let at = body.find("name=\"csrf\" value=\"").unwrap() + 19;
        let token = body[at..at + 32].to_owned();
        assert_eq!(csrf_cookie, format!("workflow_console_csrf={token}"));
        (token, csrf_cookie)
    }

    async fn post_cancel(
        &self,
        run: &str,
        token: &str,
        cookie: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let host = self.base.trim_start_matches("http://");
        let mut request = self
            .client
            .post(format!("{}/workflows/act", self.base))
            .header("cookie", cookie)
            .header("host", host)
            .form(&[
                ("action", "cancel"),
                ("id", run),
                ("csrf", token),
                ("reason", "test"),
            ]);
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }
}

#[tokio::test]
async fn a_run_whose_data_holds_markup_renders_escaped_on_every_page() {
    let server = start(ana()).await;
    let hostile = "<script>alert('pwned')</script>\"><img src=x onerror=alert(1)>";
    let run = server.order(hostile, 1_000).await;
    for path in [
        "/workflows".to_owned(),
        format!("/workflows/run?id={run}"),
        "/workflows/workflows".to_owned(),
        format!("/workflows?prefix={}", "%3Cscript%3E"),
    ] {
        let page = server.get(&path, None).await;
        assert_eq!(page.status(), 200, "{path}");
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.starts_with("default-src 'none'") && !csp.contains("script-src"),
            "{csp}"
        );
        let body = page.text().await.unwrap();
        assert!(
            !body.contains("<script"),
            "{path} holds a script tag:\n{body}"
        );
        assert!(!body.contains("<img"), "{path} holds an img tag");
    }
    let body = server
        .get(&format!("/workflows/run?id={run}"), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("&lt;script&gt;alert('pwned')&lt;/script&gt;"),
        "{body}"
    );
    // A filter typed into the form is escaped in it too.
    let body = server
        .get("/workflows?prefix=%22%3E%3Cb%3E", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("value=\"&quot;&gt;&lt;b&gt;\""), "{body}");
}

#[tokio::test]
async fn actions_without_the_apps_consent_are_forbidden() {
    // No operators: the console is read-only.
    let server = start(Vec::new()).await;
    let run = server.order("c-1", 90_000).await;
    let confirm = server
        .get(&format!("/workflows/confirm?action=cancel&id={run}"), None)
        .await;
    assert_eq!(confirm.status(), 403);
    let page = server
        .get(&format!("/workflows/run?id={run}"), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("Cancel…"),
        "a read-only console offers no actions"
    );
    // Even a well-formed POST with a matching token is refused.
    let token = "0123456789abcdef0123456789abcdef";
    let cookie = format!("workflow_console_csrf={token}");
    let refused = server.post_cancel(&run, token, &cookie, &[]).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(server.status(&run).await, RunStatus::Running);

    // Operators configured, but this browser is not one of them.
    let server = start(ana()).await;
    let run = server.order("c-2", 90_000).await;
    let stranger = format!("{OPERATOR_COOKIE}=guess");
    let (token, csrf) = server.token_for(&run, &stranger).await;
    let refused = server
        .post_cancel(&run, &token, &format!("{csrf}; {stranger}"), &[])
        .await;
    assert_eq!(refused.status(), 403);
    assert_eq!(server.status(&run).await, RunStatus::Running);
}

/// Captures what the console logs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_cross_site_post_is_refused_and_a_confirmed_one_acts_and_is_logged() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_env_filter("workflow_runtime::console=info")
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = start(ana()).await;
    let run = server.order("c-3", 90_000).await;
    let operator = format!("{OPERATOR_COOKIE}=s3cret");
    let (token, csrf) = server.token_for(&run, &operator).await;
    let cookies = format!("{csrf}; {operator}");
    // Another site's page posting with the operator's cookies: its origin
    // gives it away, or the browser says so.
    for extra in [
        vec![("origin", "http://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
    ] {
        let refused = server.post_cancel(&run, &token, &cookies, &extra).await;
        assert_eq!(refused.status(), 403, "{extra:?}");
    }
    // A form without the page's token (an attacker cannot read it).
    let refused = server
        .post_cancel(&run, "ffffffffffffffffffffffffffffffff", &cookies, &[])
        .await;
    assert_eq!(refused.status(), 403);
    assert_eq!(server.status(&run).await, RunStatus::Running);

    // The operator's own confirmation, from the console's page.
    let origin = server.base.clone();
    let done = server
        .post_cancel(
            &run,
            &token,
            &cookies,
            &[
                ("origin", origin.as_str()),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await;
    assert_eq!(done.status(), 303, "{}", done.text().await.unwrap());
    assert_eq!(
        done.headers()["location"].to_str().unwrap(),
        format!("/workflows/run?id={run}")
    );
    let mut status = server.status(&run).await;
    for _ in 0..100 {
        if status != RunStatus::Running {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        status = server.status(&run).await;
    }
    assert_eq!(status, RunStatus::Cancelled);
    let report = server.app.runner().status(&run).await.unwrap();
    assert_eq!(report.error.as_deref(), Some("test (by ana)"));
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        logged.matches("console action refused").count(),
        5,
        "{logged}"
    );
    let acted: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("console action") && !l.contains("refused"))
        .collect();
    assert_eq!(acted.len(), 1, "{logged}");
    assert!(
        acted[0].contains("actor=ana") && acted[0].contains("action=\"cancel\""),
        "{}",
        acted[0]
    );
    assert!(acted[0].contains(&format!("run=\"{run}\"")), "{}", acted[0]);
}

#[tokio::test]
async fn a_bad_filter_or_an_unknown_run_is_a_clear_error() {
    let server = start(Vec::new()).await;
    let bad = server.get("/workflows?status=nope", None).await;
    assert_eq!(bad.status(), 400);
    assert!(
        bad.text()
            .await
            .unwrap()
            .contains("there is no status &quot;nope&quot;")
    );
    let bad = server.get("/workflows?after=garbage", None).await;
    assert_eq!(bad.status(), 400);
    // No diagram module configured: no script, not even the console's.
    assert_eq!(
        server.get("/workflows/console.js", None).await.status(),
        404
    );
    let bad = server.get("/workflows?since=yesterday", None).await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("is not a UTC time"));
    let missing = server.get("/workflows/run?id=nope", None).await;
    assert_eq!(missing.status(), 404);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains("there is no run &quot;nope&quot;")
    );
}

/// Ticks every second: a schedule the console can pause.
struct Beat;

#[workflow_runtime::workflow(durable, every = "1s", run_immediately)]
impl Beat {
    #[workflow_runtime::step(given = "a beat")]
    fn beat(&self) -> u8 {
        1
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_pauses_and_resumes_a_schedule_for_every_instance() {
    use workflow_runtime::durable::Store;
    use workflow_runtime::host::WorkflowHost;
    let pg = workflow_runtime::testing::TempPostgres::start().expect("PostgreSQL starts");
    let store = Store::postgres(&pg.url()).await.unwrap();
    let host = WorkflowHost::builder()
        .store(store)
        .recurring_durable(Beat)
        .instance("one", std::time::Duration::from_secs(5))
        .worker(2)
        .build()
        .unwrap();
    let runner = host.runner();
    let stop = tokio_util::sync::CancellationToken::new();
    let hosting = tokio::spawn(host.run_until(stop.clone().cancelled_owned()));
    let console =
        workflow_runtime::console::Console::new(runner.clone()).authorize(|_| Some("ops".into()));
    let app: axum::Router = axum::Router::new().nest("/workflows", console.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for _ in 0..50 {
        if !runner.schedules().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let page = client
        .get(format!("{base}/workflows/workflows"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Schedules") && page.contains(" active"),
        "{page}"
    );
    assert!(
        page.contains("/workflows/confirm?action=pause&amp;id=Beat"),
        "{page}"
    );

    for (action, paused) in [("pause", true), ("resume", false)] {
        let confirm = client
            .get(format!("{base}/workflows/confirm?action={action}&id=Beat"))
            .send()
            .await
            .unwrap();
        let cookie = confirm.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let token = cookie
            .trim_start_matches("workflow_console_csrf=")
            .to_owned();
        let done = client
            .post(format!("{base}/workflows/act"))
            .header("cookie", &cookie)
            .header("origin", &base)
            .form(&[("action", action), ("id", "Beat"), ("csrf", &token)])
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 303, "{action}");
        assert_eq!(done.headers()["location"], "/workflows/workflows");
        assert_eq!(
            runner.schedules().await.unwrap()[0].paused,
            paused,
            "{action}"
        );
    }
    stop.cancel();
    hosting.await.unwrap();
}

#[tokio::test]
async fn the_time_filter_reads_utc_minutes_and_days() {
    let server = start(Vec::new()).await;
    let run = server.order("c-time", 1_000).await;
    let created = server.app.runner().status(&run).await.unwrap().created_ms;
    let minute = |offset: i64| {
        let at =
            chrono::DateTime::from_timestamp_millis(created - created % 60_000 + offset * 60_000)
                .unwrap();
        at.format("%Y-%m-%dT%H:%M").to_string()
    };
    let day = chrono::DateTime::from_timestamp_millis(created)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    let (server, run) = (&server, &run);
    let listed = |query: String| async move {
        let body = server
            .get(&format!("/workflows?{query}"), None)
            .await
            .text()
            .await
            .unwrap();
        body.contains(&format!("data-run=\"{run}\""))
    };
    // The minute it started in is "from"; the next is "before".
    assert!(listed(format!("since={}", minute(0))).await);
    assert!(!listed(format!("since={}", minute(1))).await);
    assert!(listed(format!("until={}", minute(1))).await);
    assert!(!listed(format!("until={}", minute(0))).await);
    assert!(listed(format!("since={day}")).await);
    assert!(listed(format!("since={}&until={}", minute(-5), minute(5))).await);
}
