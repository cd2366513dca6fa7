//! Acting on a run: a confirmation page, then a POST that must pass the
//! guard (same origin, the page's token, the app's consent) and is
//! logged with who acted.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header::LOCATION};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::Shared;
use super::guard::{Refusal, admit, token};
use super::layout::{Nav, base, hidden, page_with, problem, query};
use crate::durable::DurableError;

/// What can be done to a run.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum Action {
    Cancel,
    Redrive,
    Send,
    /// Pause a recurring workflow's schedule, for every instance.
    Pause,
    /// Let a paused schedule fire again.
    Resume,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Cancel => "cancel",
            Action::Redrive => "redrive",
            Action::Send => "send",
            Action::Pause => "pause",
            Action::Resume => "resume",
        }
    }

    /// Whether it acts on a workflow's schedule rather than on a run.
    fn on_schedule(self) -> bool {
        matches!(self, Action::Pause | Action::Resume)
    }
}

/// A run's id, or for a schedule's action the workflow's name.
#[derive(Deserialize)]
pub(super) struct Asked {
    action: Action,
    id: String,
}

pub(super) async fn confirm(
    State(console): State<Shared>,
    parts: Parts,
    Query(asked): Query<Asked>,
) -> Response {
    let base = base(&parts);
    if !console.actions_on() {
        return problem(
            &base,
            StatusCode::FORBIDDEN,
            &Refusal::Unauthorized.to_string(),
        );
    }
    let token = token(&parts.headers, &base);
    let back = if asked.action.on_schedule() {
        format!("{base}/workflows")
    } else {
        format!("{base}/run{}", query(&[("id", &asked.id)]))
    };
    let (title, question) = match asked.action {
        Action::Cancel => (
            "Cancel",
            "It stops at its next await; the steps it completed are undone by their compensations.",
        ),
        Action::Redrive => (
            "Redrive",
            "It goes on from the step it failed at (or the first one its compensation undid); the failed step's attempts start over.",
        ),
        Action::Send => (
            "Send an event to",
            "A step waiting for the event gets it; sent early, it waits for the step.",
        ),
        Action::Pause => (
            "Pause",
            "Its ticks pass and fire nothing on any instance until it is resumed; runs already started go on.",
        ),
        Action::Resume => (
            "Resume",
            "It fires again from its next tick; the ticks it passed while paused do not fire.",
        ),
    };
    let noun = if asked.action.on_schedule() {
        "the schedule of"
    } else {
        "run"
    };
    let body = html! {
        h1 { (title) " " (noun) " " span.id { (asked.id) } "?" }
        p { (question) }
        form.confirm method="post" action={ (base) "/act" } {
            (hidden("action", asked.action.as_str()))
            (hidden("id", &asked.id))
            (hidden("csrf", &token.value))
            @match asked.action {
                Action::Cancel => label { "Reason" input type="text" name="reason" value="cancelled from the console" size="50"; },
                Action::Send => {
                    label { "Event name" input type="text" name="name" required; }
                    label { "Payload (JSON)" textarea name="payload" rows="4" cols="50" { "null" } }
                },
                Action::Redrive | Action::Pause | Action::Resume => {},
            }
            p.actions {
                button.danger type="submit" name="confirm" value="yes" { "Yes, " (asked.action.as_str()) }
                a.button href=(back) { "No, go back" }
            }
        }
    };
    page_with(
        &base,
        Nav::Runs,
        title,
        body,
        StatusCode::OK,
        token.set_cookie,
    )
}

#[derive(Deserialize)]
pub(super) struct Act {
    action: Action,
    id: String,
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    payload: String,
}

pub(super) async fn act(
    State(console): State<Shared>,
    parts: Parts,
    Form(act): Form<Act>,
) -> Response {
    let base = base(&parts);
    let actor = match admit(&console, &parts, &act.csrf) {
        Ok(actor) => actor,
        Err(refusal) => {
            tracing::warn!(
                target: "workflow_runtime::console",
                action = act.action.as_str(),
                run = ?act.id,
                %refusal,
                "console action refused"
            );
            return problem(&base, StatusCode::FORBIDDEN, &refusal.to_string());
        }
    };
    let runner = console.runner();
    let done: Result<(), DurableError> = match act.action {
        Action::Cancel => {
            let reason = if act.reason.trim().is_empty() {
                "cancelled from the console"
            } else {
                act.reason.trim()
            };
            runner
                .cancel(&act.id, &format!("{reason} (by {actor})"))
                .await
        }
        Action::Redrive => runner.redrive(&act.id).await,
        Action::Send => {
            let value = match serde_json::from_str(if act.payload.trim().is_empty() {
                "null"
            } else {
                &act.payload
            }) {
                Ok(value) => value,
                Err(e) => {
                    let why = format!("the payload is not JSON: {e}");
                    return problem(&base, StatusCode::BAD_REQUEST, &why);
                }
            };
            if act.name.trim().is_empty() {
                return problem(&base, StatusCode::BAD_REQUEST, "an event needs a name");
            }
            runner
                .send_json(&act.id, act.name.trim(), value)
                .await
                .map(drop)
        }
        Action::Pause | Action::Resume => {
            let set = if act.action == Action::Pause {
                runner.pause_schedule(&act.id).await
            } else {
                runner.resume_schedule(&act.id).await
            };
            match set {
                Ok(true) => Ok(()),
                Ok(false) => {
                    let why = format!("no instance has scheduled \"{}\"", act.id);
                    return problem(&base, StatusCode::NOT_FOUND, &why);
                }
                Err(e) => Err(e),
            }
        }
    };
    match done {
        Ok(()) => {
            if act.action.on_schedule() {
                tracing::info!(
                    target: "workflow_runtime::console",
                    %actor,
                    action = act.action.as_str(),
                    workflow = ?act.id,
                    "console action"
                );
            } else {
                tracing::info!(
                    target: "workflow_runtime::console",
                    %actor,
                    action = act.action.as_str(),
                    run = ?act.id,
                    "console action"
                );
            }
            let to = if act.action.on_schedule() {
                format!("{base}/workflows")
            } else {
                format!("{base}/run{}", query(&[("id", &act.id)]))
            };
            (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
        }
        Err(e) => problem(&base, StatusCode::CONFLICT, &e.to_string()),
    }
}
