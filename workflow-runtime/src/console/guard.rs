//! What an action must pass before it runs: it comes from the console's
//! own page (same origin, and a token matching the console's cookie), and
//! the app's hook says who is acting.

use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};

use super::Shared;

/// The cookie the console's forms are checked against.
const COOKIE_NAME: &str = "workflow_console_csrf";

/// The token a page's forms carry, and the cookie to set when the
/// browser has none yet.
pub(super) struct Token {
    pub value: String,
    pub set_cookie: Option<HeaderValue>,
}

/// The browser's token, or a fresh one with the cookie that gives it.
/// The cookie is `HttpOnly` and `SameSite=Strict`: no script reads it and
/// no other site's request carries it.
pub(super) fn token(headers: &HeaderMap, base: &str) -> Token {
    if let Some(value) = cookie(headers) {
        return Token {
            value,
            set_cookie: None,
        };
    }
    let value = uuid::Uuid::new_v4().simple().to_string();
    let path = if base.is_empty() { "/" } else { base };
    let set_cookie = HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={value}; Path={path}; HttpOnly; SameSite=Strict"
    ))
    .ok();
    Token { value, set_cookie }
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
        .filter(|value| value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Why an action was refused.
#[derive(Debug)]
pub(super) enum Refusal {
    /// It did not come from the console's page.
    CrossSite(&'static str),
    /// The app did not let this request act (or lets nobody).
    Unauthorized,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::CrossSite(why) => write!(f, "refused: {why}"),
            Refusal::Unauthorized => {
                f.write_str("refused: you are not allowed to act on runs here")
            }
        }
    }
}

/// Checks a POST carrying `form_token`; who is acting, if it may.
pub(super) fn admit(console: &Shared, parts: &Parts, form_token: &str) -> Result<String, Refusal> {
    same_origin(parts, console.0.origin.as_deref())?;
    match cookie(&parts.headers) {
        Some(expected) if same_secret(&expected, form_token) => {}
        _ => {
            return Err(Refusal::CrossSite(
                "the form's token does not match this browser's",
            ));
        }
    }
    let authorize = console.0.authorize.as_ref().ok_or(Refusal::Unauthorized)?;
    authorize(parts).ok_or(Refusal::Unauthorized)
}

/// Whether two secrets are equal, in a time that does not tell how much
/// of them matched.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

/// A browser names where a POST comes from: `Sec-Fetch-Site`, and
/// `Origin` on every cross-site POST. Either naming another site is
/// refused. The console's own origin is the one the app configured
/// ([`Console::origin`](super::Console::origin), behind a proxy that
/// rewrites `Host`), else the request's `Host` (HTTP/1) or authority
/// (HTTP/2).
fn same_origin(parts: &Parts, configured: Option<&str>) -> Result<(), Refusal> {
    let headers = &parts.headers;
    if let Some(site) = headers.get("sec-fetch-site")
        && site != "same-origin"
    {
        return Err(Refusal::CrossSite("the request came from another site"));
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let ours = match configured {
            Some(configured) => origin == configured.trim_end_matches('/'),
            None => {
                let authority = origin.split_once("://").map(|(_, rest)| rest);
                let host = headers
                    .get(HOST)
                    .and_then(|h| h.to_str().ok())
                    .or_else(|| parts.uri.authority().map(|a| a.as_str()));
                authority.is_some() && authority == host
            }
        };
        if !ours {
            return Err(Refusal::CrossSite(
                "the request's origin is not this console's",
            ));
        }
    }
    Ok(())
}
