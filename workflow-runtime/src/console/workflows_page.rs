//! The workflows: each durable definition with its steps and its runs per
//! status, the runner's health, and the instances holding leases on a
//! shared store.

use axum::extract::State;
use axum::http::request::Parts;
use axum::response::Response;
use maud::html;

use super::Shared;
use super::layout::{Nav, badge, base, duration, home, page, query, time};
use crate::host::{Cadence, HealthStatus};

fn cadence(cadence: &Cadence) -> String {
    match cadence {
        Cadence::Every(every) => format!(
            "every {}",
            duration(i64::try_from(every.as_millis()).unwrap_or(i64::MAX))
        ),
        #[cfg(feature = "cron")]
        Cadence::Cron(cron) => format!(
            "cron \"{}\" ({})",
            cron.expression(),
            cron.zone().unwrap_or("UTC")
        ),
        #[allow(unreachable_patterns)]
        _ => "scheduled".to_owned(),
    }
}

pub(super) async fn show(State(console): State<Shared>, parts: Parts) -> Response {
    let base = base(&parts);
    let runner = console.runner();
    let now = runner.clock().now_ms();
    let counts = match runner.store() {
        Some(store) => store.counts_by_workflow().await.unwrap_or_default(),
        None => Default::default(),
    };
    let holders = match runner.store() {
        Some(store) => store.backend().holders(now).await.unwrap_or_default(),
        None => Default::default(),
    };
    // Only a shared store keeps schedules; the others have none to show.
    let schedules = runner.schedules().await.unwrap_or_default();
    let act = |action: &str, workflow: &str| {
        format!(
            "{base}/confirm{}",
            query(&[("action", action), ("id", workflow)])
        )
    };
    let health = runner.health();
    let health_word = |status: HealthStatus| match status {
        HealthStatus::Healthy => "completed",
        HealthStatus::Degraded => "cancelled",
        HealthStatus::Unhealthy => "failed",
    };
    let list = |workflow: &str, status: &str| {
        format!(
            "{}{}",
            home(&base),
            query(&[("workflow", workflow), ("status", status)])
        )
    };
    let body = html! {
        h1 { "Workflows" }
        table.workflows {
            thead { tr { th { "Workflow" } th { "Steps" } th { "Schedule" } th { "Running" } th { "Completed" } th { "Failed" } th { "Other" } } }
            tbody {
                @for (name, fingerprint, steps) in runner.durable_definitions() {
                    @let c = counts.get(name).cloned().unwrap_or_default();
                    tr data-workflow=(name) {
                        td { a href=(list(name, "")) { (name) } br; span.muted { (fingerprint) } }
                        td { ol { @for step in steps { li { (step.kind) ": " (step.title) } } } }
                        td {
                            @match runner.schedule_of(name) {
                                Some(schedule) => (cadence(&schedule.cadence)),
                                None => span.muted { "on demand" },
                            }
                        }
                        td { a href=(list(name, "running")) { (c.running) } }
                        td { a href=(list(name, "completed")) { (c.completed) } }
                        td { a href=(list(name, "failed")) { (c.failed + c.compensation_failed) } }
                        td { (c.cancelled + c.stuck + c.incompatible) }
                    }
                }
            }
        }
        @if !schedules.is_empty() {
            h2 { "Schedules" }
            table.schedules {
                thead { tr { th { "Workflow" } th { "Next tick (UTC)" } th { "Last fired (UTC)" } th { "State" } th {} } }
                tbody {
                    @for schedule in &schedules {
                        tr data-workflow=(schedule.workflow) {
                            td { (schedule.workflow) }
                            td { @match schedule.next_tick_ms { Some(at) => (time(at)), None => span.muted { "fires no more" } } }
                            td { @match schedule.last_tick_ms { Some(at) => (time(at)), None => span.muted { "never" } } }
                            td.state { @if schedule.paused { (badge("cancelled")) " paused" } @else { (badge("running")) " active" } }
                            td {
                                @if console.actions_on() {
                                    @if schedule.paused {
                                        a.button href=(act("resume", &schedule.workflow)) { "Resume…" }
                                    } @else {
                                        a.button.danger href=(act("pause", &schedule.workflow)) { "Pause…" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Health " (badge(health_word(health.status))) }
        @if health.workflows.is_empty() && health.breakers.is_empty() && health.checks.is_empty() {
            p.muted { "No in-process runs or checks yet." }
        } @else {
            table.health {
                thead { tr { th { "Name" } th { "Runs" } th { "Failures" } th { "Failing in a row" } } }
                tbody {
                    @for w in &health.workflows {
                        tr { td { (w.name) } td { (w.runs) } td { (w.failures) } td { (w.consecutive_failures) } }
                    }
                    @for b in &health.breakers {
                        tr { td { "breaker " (b.name) } td { (b.state) } td { } td { (b.consecutive_failures) } }
                    }
                    @for check in &health.checks {
                        tr { td { "check " (check.name) } td { (badge(health_word(check.status))) } td colspan="2" { (check.message.clone().unwrap_or_default()) } }
                    }
                }
            }
        }
        h2 { "Instances holding leases" }
        @if holders.is_empty() {
            p.muted { "None: the store has no leases, or nobody holds a run now." }
        } @else {
            table.leases {
                thead { tr { th { "Instance" } th { "Runs held" } } }
                tbody { @for (instance, held) in &holders { tr { td { (instance) } td { (held) } } } }
            }
        }
        p.muted { "This instance: " (runner.instance()) }
    };
    page(&base, Nav::Workflows, "Workflows", body)
}
