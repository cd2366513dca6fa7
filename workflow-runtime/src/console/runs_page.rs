//! The runs: counts per status, a filter, and a page of runs, newest
//! first, paged by key.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::Shared;
use super::layout::{Nav, badge, base, duration, home, page, parse_time, problem, query, time};
use crate::durable::{Cursor, RunCounts, RunFilter, RunStatus};

/// The filter as the form and the links write it: empty means "any".
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Filter {
    workflow: String,
    status: String,
    prefix: String,
    since: String,
    until: String,
    after: String,
}

const STATUSES: [RunStatus; 7] = [
    RunStatus::Running,
    RunStatus::Completed,
    RunStatus::Failed,
    RunStatus::CompensationFailed,
    RunStatus::Cancelled,
    RunStatus::Stuck,
    RunStatus::Incompatible,
];

fn count(counts: &RunCounts, status: RunStatus) -> u64 {
    match status {
        RunStatus::Running => counts.running,
        RunStatus::Completed => counts.completed,
        RunStatus::Failed => counts.failed,
        RunStatus::CompensationFailed => counts.compensation_failed,
        RunStatus::Cancelled => counts.cancelled,
        RunStatus::Stuck => counts.stuck,
        RunStatus::Incompatible => counts.incompatible,
    }
}

pub(super) async fn show(
    State(console): State<Shared>,
    parts: Parts,
    Query(form): Query<Filter>,
) -> Response {
    let base = base(&parts);
    let mut filter = RunFilter::new();
    if !form.workflow.is_empty() {
        filter = filter.workflow(&form.workflow);
    }
    if !form.status.is_empty() {
        let Some(status) = RunStatus::parse(&form.status) else {
            let why = format!("there is no status \"{}\"", form.status);
            return problem(&base, StatusCode::BAD_REQUEST, &why);
        };
        filter = filter.status(status);
    }
    if !form.prefix.is_empty() {
        filter = filter.id_prefix(&form.prefix);
    }
    for (text, what) in [(&form.since, "since"), (&form.until, "until")] {
        if text.is_empty() {
            continue;
        }
        let Some(ms) = parse_time(text) else {
            let why = format!("\"{text}\" is not a UTC time like 2026-12-05 or 2026-12-05T14:30");
            return problem(&base, StatusCode::BAD_REQUEST, &why);
        };
        filter = if what == "since" {
            filter.since_ms(ms)
        } else {
            filter.until_ms(ms)
        };
    }
    if !form.after.is_empty() {
        match form.after.parse::<Cursor>() {
            Ok(cursor) => filter = filter.after(cursor),
            Err(e) => return problem(&base, StatusCode::BAD_REQUEST, &e.to_string()),
        }
    }
    let runner = console.runner();
    let Some(store) = runner.store() else {
        return problem(
            &base,
            StatusCode::NOT_FOUND,
            "this runner has no durable store",
        );
    };
    let (page_of_runs, by_workflow) =
        match (runner.runs(&filter).await, store.counts_by_workflow().await) {
            (Ok(runs), Ok(counts)) => (runs, counts),
            (Err(e), _) => {
                return problem(&base, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
            }
            (_, Err(e)) => {
                return problem(&base, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
            }
        };
    let mut counts = RunCounts::default();
    for (workflow, c) in &by_workflow {
        if form.workflow.is_empty() || *workflow == form.workflow {
            counts.merge(c);
        }
    }
    let mut workflows: Vec<String> = by_workflow.keys().cloned().collect();
    for name in runner
        .durable_definitions()
        .into_iter()
        .map(|d| d.0.to_owned())
    {
        if !workflows.contains(&name) {
            workflows.push(name);
        }
    }
    workflows.sort();
    // Where each running run is: one read of its journal each.
    let now = runner.clock().now_ms();
    let mut current = Vec::with_capacity(page_of_runs.runs.len());
    for run in &page_of_runs.runs {
        let step = match run.status {
            RunStatus::Running => runner.status(&run.id).await.ok().and_then(|r| {
                let step = r.current_step?;
                Some(match r.waiting {
                    Some(_) => format!("{step} (waiting)"),
                    None => step,
                })
            }),
            _ => run.failed_step.clone(),
        };
        current.push(step.unwrap_or_default());
    }
    let link = |status: &str, after: &str| {
        format!(
            "{}{}",
            home(&base),
            query(&[
                ("workflow", &form.workflow),
                ("status", status),
                ("prefix", &form.prefix),
                ("since", &form.since),
                ("until", &form.until),
                ("after", after),
            ])
        )
    };
    let total: u64 = STATUSES.iter().map(|s| count(&counts, *s)).sum();
    let body = html! {
        h1 { "Runs" }
        div.counts {
            a class=(if form.status.is_empty() { "current" } else { "" }) href=(link("", "")) {
                "all " strong { (total) }
            }
            @for status in STATUSES {
                a class=(if form.status == status.as_str() { "current" } else { "" })
                    href=(link(status.as_str(), "")) data-status=(status.as_str()) {
                    (badge(status.as_str())) " " strong { (count(&counts, status)) }
                }
            }
        }
        form.filters method="get" action=(home(&base)) {
            label { "Workflow"
                select name="workflow" {
                    option value="" { "any" }
                    @for name in &workflows {
                        option value=(name) selected[*name == form.workflow] { (name) }
                    }
                }
            }
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for status in STATUSES {
                        option value=(status.as_str()) selected[form.status == status.as_str()] {
                            (status.as_str().replace('_', " "))
                        }
                    }
                }
            }
            label { "Run id starts with"
                input type="text" name="prefix" value=(form.prefix);
            }
            label { "Started from (UTC)"
                input type="datetime-local" name="since" value=(form.since);
            }
            label { "Started before (UTC)"
                input type="datetime-local" name="until" value=(form.until);
            }
            button type="submit" { "Filter" }
        }
        @if page_of_runs.runs.is_empty() {
            p.muted { "No runs match." }
        } @else {
            table.runs {
                thead { tr { th { "Workflow" } th { "Run" } th { "Status" } th { "Started (UTC)" } th { "Duration" } th { "Step" } } }
                tbody {
                    @for (run, step) in page_of_runs.runs.iter().zip(&current) {
                        tr data-run=(run.id) {
                            td { (run.workflow) }
                            td.id { a href={ (base) "/run" (query(&[("id", &run.id)])) } { (run.id) } }
                            td { (badge(run.status.as_str())) }
                            td { (time(run.created_ms)) }
                            td {
                                @if run.status == RunStatus::Running {
                                    (duration(now - run.created_ms)) " so far"
                                } @else {
                                    (duration(run.updated_ms - run.created_ms))
                                }
                            }
                            td { (step) }
                        }
                    }
                }
            }
        }
        div.pager {
            @if !form.after.is_empty() {
                a href=(link(&form.status, "")) { "← Newest" }
            }
            @if let Some(next) = &page_of_runs.next {
                a.next href=(link(&form.status, &next.to_string())) { "Older →" }
            }
        }
    };
    page(&base, Nav::Runs, "Runs", body)
}
