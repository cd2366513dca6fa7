//! The console in a real browser: headless Chromium, driven through the
//! machine's `chromedriver` over loopback, against the order API with its
//! console at `/workflows`. It loads the runs, filters to the failed ones,
//! opens one and reads its timeline, then cancels a running order through
//! the confirmation page and sees its status change. Each page's
//! screenshot is saved under the test's output directory
//! (`target/tmp/console-screenshots`); with `WORKFLOW_SCREENSHOTS=update`
//! they also replace the README's (`docs/console`).

use std::path::PathBuf;
use std::time::Duration;

use workflow_runtime::durable::RunStatus;
use workflow_suite::bank::DECLINED_CARD;
use workflow_suite::order_api::OPERATOR_COOKIE;

mod browser;
#[allow(dead_code)] // each test binary uses part of it
mod console_server;
use browser::{Browser, Driver};
use console_server::{ana, start};

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shoot(browser: &Browser, name: &str) {
    let path = screenshots().join(format!("{name}.png"));
    browser.screenshot(&path).await;
    if std::env::var("WORKFLOW_SCREENSHOTS").as_deref() == Ok("update") {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/console");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&path, docs.join(format!("{name}.png"))).unwrap();
    }
}

/// The text of every `css` element, in order.
async fn texts(browser: &Browser, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for element in browser.all(css).await {
        out.push(browser.text(&element).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_a_failed_run_reads_its_timeline_and_cancels_a_running_one() {
    let server = start(ana()).await;
    for n in 0..3 {
        server
            .order(&format!("customer-{n}"), 1_200 + n * 100)
            .await;
    }
    let declined = server
        .order_paid("customer-declined", 2_500, DECLINED_CARD)
        .await;
    let waiting = server.order("customer-big", 90_000).await;
    // The declined order's run fails once its compensations ran.
    for _ in 0..100 {
        if server.status(&declined).await == RunStatus::Failed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.status(&declined).await, RunStatus::Failed);

    let driver = Driver::start().await;
    let browser = driver.session().await;
    // The operator's session cookie, as the app's login would set it.
    browser.goto(&format!("{}/health", server.base)).await;
    browser.add_cookie(OPERATOR_COOKIE, "s3cret").await;

    // The runs: all five, newest first, with counts per status.
    browser.goto(&format!("{}/workflows", server.base)).await;
    let rows = browser.all("table.runs tbody tr").await;
    assert_eq!(rows.len(), 5);
    let first = browser.attribute(&rows[0], "data-run").await;
    assert_eq!(first.as_deref(), Some(waiting.as_str()), "newest first");
    let failed_count = browser.find(".counts a[data-status='failed'] strong").await;
    assert_eq!(browser.text(&failed_count).await, "1");
    shoot(&browser, "runs").await;

    // Filter to the failed runs with the form.
    browser.select("status", "failed").await;
    let filter = browser.find("form.filters button[type='submit']").await;
    browser.click(&filter).await;
    browser.wait_for_url("status=failed").await;
    let rows = browser.all("table.runs tbody tr").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        browser.attribute(&rows[0], "data-run").await.as_deref(),
        Some(declined.as_str())
    );
    assert_eq!(texts(&browser, "table.runs tbody .badge").await, ["failed"]);
    shoot(&browser, "runs-failed").await;

    // Open it: its timeline shows the steps in order, the payment failed
    // and the order it created undone.
    let link = browser.find("table.runs tbody td.id a").await;
    browser.click(&link).await;
    browser.wait_for_url("/workflows/run?id=").await;
    assert_eq!(texts(&browser, "#status").await, ["failed"]);
    let steps = browser.all("svg.timeline g.step").await;
    let mut indices = Vec::new();
    let mut states = Vec::new();
    for step in &steps {
        indices.push(browser.attribute(step, "data-index").await.unwrap());
        states.push(browser.attribute(step, "data-state").await.unwrap());
    }
    let expected: Vec<String> = (0..steps.len()).map(|i| i.to_string()).collect();
    assert_eq!(indices, expected, "the timeline lists the steps in order");
    let titles = texts(&browser, "table.steps tbody tr td:nth-child(2)").await;
    let payment = titles
        .iter()
        .position(|t| t == "process payment")
        .expect("a payment step");
    assert_eq!(states[payment], "failed", "{titles:?} {states:?}");
    assert!(
        states[..payment].contains(&"compensated".to_owned()),
        "{titles:?} {states:?}"
    );
    shoot(&browser, "run-failed").await;

    // The running order: cancel it through the confirmation page.
    browser
        .goto(&format!("{}/workflows/run?id={waiting}", server.base))
        .await;
    assert_eq!(texts(&browser, "#status").await, ["running"]);
    shoot(&browser, "run-waiting").await;
    let cancel = browser.find("a.button.danger").await;
    browser.click(&cancel).await;
    browser.wait_for_url("/workflows/confirm").await;
    shoot(&browser, "confirm-cancel").await;
    let yes = browser.find("form.confirm button[type='submit']").await;
    browser.click(&yes).await;
    browser.wait_for_url("/workflows/run?id=").await;
    // Back on the run's page; the run stops at its next await.
    let mut status = Vec::new();
    for _ in 0..50 {
        status = texts(&browser, "#status").await;
        if status == ["cancelled"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        browser.goto(&browser.url().await).await;
    }
    assert_eq!(status, ["cancelled"]);
    assert!(browser.url().await.contains("/workflows/run?id="));
    assert_eq!(server.status(&waiting).await, RunStatus::Cancelled);
    let report = server.app.runner().status(&waiting).await.unwrap();
    assert!(
        report.error.as_deref().unwrap().ends_with("(by ana)"),
        "{:?}",
        report.error
    );
    shoot(&browser, "run-cancelled").await;

    browser
        .goto(&format!("{}/workflows/workflows", server.base))
        .await;
    let workflows = browser.all("table.workflows tbody tr").await;
    assert_eq!(
        browser
            .attribute(&workflows[0], "data-workflow")
            .await
            .as_deref(),
        Some("CreateOrder")
    );
    shoot(&browser, "workflows").await;
    browser.quit().await;
}

/// A stand-in for Mermaid, served from another origin as a CDN would: it
/// marks each diagram it was asked to draw, and styles it with a `<style>`
/// element of its own, as Mermaid styles the diagrams it draws, noting
/// the colour the page then gives the diagram.
const FAKE_MERMAID: &str = "export default {
  initialize(options) { window.mermaidOptions = options; },
  async run({ querySelector }) {
    const style = document.createElement('style');
    style.textContent = 'pre.mermaid { outline-color: rgb(1, 2, 3); }';
    document.head.appendChild(style);
    for (const pre of document.querySelectorAll(querySelector)) {
      pre.setAttribute('data-styled', getComputedStyle(pre).outlineColor);
      pre.setAttribute('data-drawn', window.mermaidOptions.securityLevel);
    }
  },
};";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_told_where_mermaid_is_draws_the_definition_and_no_other_script_runs() {
    use axum::http::header;
    // The "CDN": module scripts from another origin need CORS.
    let cdn = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cdn_url = format!("http://{}/mermaid.mjs", cdn.local_addr().unwrap());
    let module = axum::Router::new().route(
        "/mermaid.mjs",
        axum::routing::get(|| async {
            (
                [
                    (header::CONTENT_TYPE, "text/javascript"),
                    (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                ],
                FAKE_MERMAID,
            )
        }),
    );
    tokio::spawn(async move { axum::serve(cdn, module).await });
    let server = console_server::start_with(workflow_suite::order_api::Config {
        mermaid: Some(cdn_url),
        ..Default::default()
    })
    .await;
    // A customer's name that would run if any inline script could.
    let run = server
        .order(
            "<img src=x onerror=\"document.body.dataset.pwned=1\">",
            1_000,
        )
        .await;
    let driver = Driver::start().await;
    let browser = driver.session().await;
    browser
        .goto(&format!("{}/workflows/run?id={run}", server.base))
        .await;
    let mut drawn = None;
    for _ in 0..50 {
        let diagram = browser.find("pre.mermaid").await;
        drawn = browser.attribute(&diagram, "data-drawn").await;
        if drawn.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        drawn.as_deref(),
        Some("strict"),
        "the module drew the diagram"
    );
    // The page's policy lets the module's inline styles apply.
    let diagram = browser.find("pre.mermaid").await;
    assert_eq!(
        browser.attribute(&diagram, "data-styled").await.as_deref(),
        Some("rgb(1, 2, 3)"),
        "the diagram's inline style applied"
    );
    let body = browser.find("body").await;
    assert_eq!(browser.attribute(&body, "data-pwned").await, None);
    shoot(&browser, "run-diagram").await;
    browser.quit().await;
}
