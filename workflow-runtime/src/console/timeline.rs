//! One run's steps as bars on a time axis: when each ran, how it ended,
//! how many attempts it took, and what the run waits for now.

use maud::{Markup, html};

use super::layout::{duration, time};
use crate::durable::{RunReport, StepState, Waiting};

const WIDTH: i64 = 960;
const LABELS: i64 = 260;
const ROW: i64 = 26;
const TOP: i64 = 24;

/// A step's state as one word: its bar's class and its table cell.
pub(super) fn state_class(state: StepState) -> &'static str {
    match state {
        StepState::Completed => "completed",
        StepState::Failed => "failed",
        StepState::Compensated => "compensated",
        StepState::Running => "running",
        _ => "pending",
    }
}

/// What the run waits for, in words, and until when.
pub(super) fn waiting_words(waiting: &Waiting) -> (String, Option<i64>) {
    match waiting {
        Waiting::Sleep { until_ms } => (
            format!("sleeping until {} UTC", time(*until_ms)),
            Some(*until_ms),
        ),
        Waiting::Event { name, deadline_ms } => (
            match deadline_ms {
                Some(at) => format!("waiting for event \"{name}\" until {} UTC", time(*at)),
                None => format!("waiting for event \"{name}\""),
            },
            *deadline_ms,
        ),
        Waiting::Child { run } => (format!("waiting for child run {run}"), None),
    }
}

/// The timeline of `report` as of `now_ms`: an SVG whose rows are the
/// steps in order (`data-index`, `data-state` name each for tests and
/// styles).
pub(super) fn timeline(report: &RunReport, now_ms: i64) -> Markup {
    let start = report.created_ms;
    let waits_until = report.waiting.as_ref().and_then(|w| waiting_words(w).1);
    let mut end = report.updated_ms.max(start + 1);
    for step in &report.steps {
        end = end.max(step.ended_ms.unwrap_or(start));
    }
    if report.status.is_finished() {
        // Ended: the axis ends with it.
    } else {
        end = end.max(now_ms);
        if let Some(until) = waits_until {
            end = end.max(until.min(now_ms + 30 * 86_400_000));
        }
    }
    let span = (end - start).max(1);
    let x = |ms: i64| LABELS + (ms - start).clamp(0, span) * (WIDTH - LABELS - 10) / span;
    let rows = i64::try_from(report.steps.len()).unwrap_or(0);
    let height = TOP + rows * ROW + 10;
    let ticks = [0, 1, 2, 3, 4].map(|q| (x(start + span * q / 4), duration(span * q / 4)));
    html! {
        svg.timeline xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (height) }
            role="img" aria-label="step timeline" {
            @for (n, (at, label)) in ticks.iter().enumerate() {
                line.axis x1=(at) x2=(at) y1=(TOP - 6) y2=(height - 6) {}
                @if n + 1 == ticks.len() {
                    text.tick x=(at - 2) y="14" text-anchor="end" { "+" (label) }
                } @else {
                    text.tick x=(at + 2) y="14" { "+" (label) }
                }
            }
            @for (row, step) in report.steps.iter().enumerate() {
                @let y = TOP + i64::try_from(row).unwrap_or(0) * ROW;
                @let class = state_class(step.state);
                g.step data-index=(step.index) data-state=(class) {
                    text x="6" y=(y + 16) {
                        (step.index + 1) ". " (step.title)
                    }
                    @if let Some(began) = step.started_ms.or(step.ended_ms) {
                        @let finished = step.ended_ms.unwrap_or(if report.status.is_finished() { report.updated_ms } else { now_ms });
                        @let (x1, x2) = (x(began), x(finished).max(x(began) + 3));
                        rect class=(class) x=(x1) y=(y + 4) width=(x2 - x1) height=(ROW - 10) rx="3" {
                            title {
                                (step.title) ": " (class)
                                @if step.attempts > 1 { ", " (step.attempts) " attempts" }
                                ", " (duration(finished - began))
                                @if let Some(error) = &step.error { " - " (error) }
                            }
                        }
                        @if step.attempts > 1 {
                            text x=(x2 + 4) y=(y + 16) { "×" (step.attempts) }
                        }
                        @if step.state == StepState::Running {
                            @if let (Some(waiting), Some(until)) = (&report.waiting, waits_until) {
                                @let (wx1, wx2) = (x(now_ms.min(until)), x(until));
                                rect.waiting x=(wx1.min(wx2)) y=(y + 8) width=((wx2 - wx1).abs().max(3)) height=(ROW - 18) rx="2" {
                                    title { (waiting_words(waiting).0) }
                                }
                            }
                        }
                    } @else {
                        text.tick x=(LABELS) y=(y + 16) { "not reached" }
                    }
                }
            }
        }
        div.legend {
            span { i.completed {} "completed" }
            span { i.failed {} "failed" }
            span { i.compensated {} "compensated (undone)" }
            span { i.running {} "running" }
            span { i.waiting {} "waiting" }
        }
    }
}
