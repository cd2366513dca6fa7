//! One run: what it is, where it is, its timeline, each step's output and
//! error, its events, its family, and the definition's diagram with the
//! run's place marked.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::Shared;
use super::layout::{
    Nav, badge, base, duration, page, page_drawing, payload, problem, query, time,
};
use super::timeline::{state_class, timeline, waiting_words};
use crate::durable::{DurableError, RunReport, RunStatus, StepState, StoreError};

#[derive(Deserialize)]
pub(super) struct Which {
    id: String,
}

pub(super) async fn show(
    State(console): State<Shared>,
    parts: Parts,
    Query(which): Query<Which>,
) -> Response {
    let base = base(&parts);
    let runner = console.runner();
    let Some(store) = runner.store() else {
        return problem(
            &base,
            StatusCode::NOT_FOUND,
            "this runner has no durable store",
        );
    };
    let report = match runner.status(&which.id).await {
        Ok(report) => report,
        Err(DurableError::Store(StoreError::NoSuchRun(_))) => {
            let why = format!("there is no run \"{}\"", which.id);
            return problem(&base, StatusCode::NOT_FOUND, &why);
        }
        Err(e) => return problem(&base, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let (row, journal) = match (
        store.run(&which.id).await,
        store.backend().steps(&which.id).await,
    ) {
        (Ok(Some(row)), Ok(journal)) => (row, journal),
        (Ok(None), _) => return problem(&base, StatusCode::NOT_FOUND, "the run was just removed"),
        (Err(e), _) | (_, Err(e)) => {
            return problem(&base, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
        }
    };
    let now = runner.clock().now_ms();
    let output_of = |index: u32| {
        journal
            .iter()
            .find(|s| s.index == index && s.mark().is_none())
    };
    let run_link = |id: &str| format!("{base}/run{}", query(&[("id", id)]));
    let act = |action: &str| {
        format!(
            "{base}/confirm{}",
            query(&[("action", action), ("id", &report.id)])
        )
    };
    let definition = runner
        .durable_definitions()
        .into_iter()
        .find(|d| d.0 == report.workflow);
    let body = html! {
        h1 { (report.workflow) " · " span.id { (report.id) } }
        dl.facts {
            dt { "Status" } dd id="status" { (badge(report.status.as_str())) }
            dt { "Started" } dd { (time(report.created_ms)) " UTC" }
            @if report.status.is_finished() {
                dt { "Ended" } dd { (time(report.updated_ms)) " UTC, after " (duration(report.updated_ms - report.created_ms)) }
            } @else {
                dt { "Running for" } dd { (duration(now - report.created_ms)) }
            }
            @if let Some(step) = &report.current_step {
                dt { "Step" } dd { (step) }
            }
            @if let Some(waiting) = &report.waiting {
                dt { "Waiting" } dd { (waiting_words(waiting).0) }
            }
            @if let Some(reason) = &report.cancel {
                dt { "Cancel asked" } dd { (reason) }
            }
            @if let Some(error) = &report.error {
                dt { "Error" } dd.problem { (error) }
            }
            @if let Some(parent) = &report.parent {
                dt { "Parent" } dd { a href=(run_link(parent)) { (parent) } }
            }
            @if !report.children.is_empty() {
                dt { "Children" }
                dd { @for child in &report.children { a href=(run_link(child)) { (child) } " " } }
            }
            @for earlier in &report.earlier_failures {
                dt { "Failed before" } dd { (earlier) }
            }
            dt { "Definition" } dd.muted { (row.fingerprint) }
        }
        @if console.actions_on() {
            div.actions {
                @if report.status == RunStatus::Running {
                    a.button.danger href=(act("cancel")) { "Cancel…" }
                    a.button href=(act("send")) { "Send an event…" }
                } @else if matches!(report.status, RunStatus::Failed | RunStatus::Stuck | RunStatus::Incompatible) {
                    a.button href=(act("redrive")) { "Redrive…" }
                }
            }
        }
        h2 { "Timeline" }
        (timeline(&report, now))
        h2 { "Steps" }
        table.steps {
            thead { tr { th { "#" } th { "Step" } th { "State" } th { "Attempts" } th { "Started (UTC)" } th { "Took" } th { "Output or error" } } }
            tbody {
                @for step in &report.steps {
                    tr data-index=(step.index) {
                        td { (step.index + 1) }
                        td { (step.title) }
                        td { (state_class(step.state)) }
                        td { (step.attempts) }
                        td { @if let Some(at) = step.started_ms { (time(at)) } }
                        td { @if let (Some(a), Some(b)) = (step.started_ms, step.ended_ms) { (duration(b - a)) } }
                        td {
                            @if let Some(error) = &step.error { pre.problem { (error) } }
                            @if let Some(done) = output_of(step.index) { pre { (payload(&done.output)) } }
                        }
                    }
                }
            }
        }
        div.columns {
            div { h2 { "Input" } pre id="input" { (payload(&row.input)) } }
            div {
                h2 { "Output" }
                @match &row.output {
                    Some(output) => pre id="output" { (payload(output)) },
                    None => p.muted { "none yet" },
                }
            }
        }
        @if !report.events.is_empty() {
            h2 { "Events" }
            table.events {
                thead { tr { th { "#" } th { "Name" } th { "Sent (UTC)" } th { "Consumed" } } }
                tbody {
                    @for event in &report.events {
                        tr { td { (event.seq) } td { (event.name) } td { (time(event.sent_ms)) } td { @if event.consumed { "yes" } @else { "not yet" } } }
                    }
                }
            }
        }
        @if let Some((_, _, steps)) = definition {
            h2 { "Definition" }
            @if console.mermaid().is_none() {
                p.muted { "Mermaid; the run's place is class " code { "current" } "." }
            }
            pre.mermaid { (diagram(&report, steps)) }
        }
    };
    match console.mermaid() {
        Some(url) => page_drawing(&base, Nav::Runs, &report.id, body, url),
        None => page(&base, Nav::Runs, &report.id, body),
    }
}

/// The definition's flowchart with the step the run is at (or failed at)
/// marked: text, escaped like the rest of the page.
fn diagram(report: &RunReport, steps: &'static [crate::step::StepMeta]) -> Markup {
    let mut chart = crate::definition::mermaid(&report.workflow, steps);
    let at = report
        .steps
        .iter()
        .find(|s| matches!(s.state, StepState::Running | StepState::Failed))
        .map(|s| s.index);
    if let Some(at) = at {
        chart.push_str("    classDef current fill:#fde68a,stroke:#b45309,stroke-width:2px\n");
        chart.push_str(&format!("    class s{at} current\n"));
    }
    html! { (chart) }
}
