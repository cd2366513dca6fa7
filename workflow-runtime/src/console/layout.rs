//! What every page shares: the frame and its navigation, the stylesheet,
//! the headers that keep scripts out, and how times, durations and
//! payloads are written.

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// Where the console is mounted ("" at the root, "/workflows" nested),
/// so its links work wherever the app puts it.
pub(super) fn base(parts: &Parts) -> String {
    parts
        .extensions
        .get::<axum::extract::NestedPath>()
        .map(|nested| nested.as_str().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// Which page the navigation marks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    Runs,
    Workflows,
}

/// A page: `title`, `body` in the console's frame, served with headers
/// that allow its stylesheet and nothing else (no script, no frame).
pub(super) fn page(base: &str, nav: Nav, title: &str, body: Markup) -> Response {
    page_with(base, nav, title, body, StatusCode::OK, None)
}

pub(super) fn page_with(
    base: &str,
    nav: Nav,
    title: &str,
    body: Markup,
    status: StatusCode,
    set_cookie: Option<HeaderValue>,
) -> Response {
    framed(base, nav, title, body, status, set_cookie, None)
}

/// A page that draws its Mermaid diagrams with the module at `mermaid`
/// (a URL the app trusts), through the console's own `console.js`: the
/// policy allows those two scripts and no other.
pub(super) fn page_drawing(
    base: &str,
    nav: Nav,
    title: &str,
    body: Markup,
    mermaid: &str,
) -> Response {
    framed(base, nav, title, body, StatusCode::OK, None, Some(mermaid))
}

fn framed(
    base: &str,
    nav: Nav,
    title: &str,
    body: Markup,
    status: StatusCode,
    set_cookie: Option<HeaderValue>,
    mermaid: Option<&str>,
) -> Response {
    let current = |n: Nav| if n == nav { "current" } else { "" };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · workflows" }
                link rel="stylesheet" href={ (base) "/console.css" };
                @if mermaid.is_some() {
                    script type="module" src={ (base) "/console.js" } {}
                }
            }
            body {
                header {
                    nav {
                        a.brand href=(home(base)) { "workflows" }
                        a class=(current(Nav::Runs)) href=(home(base)) { "Runs" }
                        a class=(current(Nav::Workflows)) href={ (base) "/workflows" } { "Workflows" }
                    }
                }
                main { (body) }
            }
        }
    };
    let mut response = (status, markup).into_response();
    let headers = response.headers_mut();
    // One `style-src` directive: a browser obeys the first of two.
    let policy = "default-src 'none'; img-src 'self' data:; \
                  form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    // Mermaid styles its diagrams inline: a drawing page allows that too.
    let policy = match mermaid.and_then(script_source) {
        Some(source) => HeaderValue::from_str(&format!(
            "{policy}; script-src {source}; style-src 'self' 'unsafe-inline'"
        ))
        .unwrap_or(HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
        )),
        None => HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    };
    headers.insert(CONTENT_SECURITY_POLICY, policy);
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = set_cookie {
        headers.insert(SET_COOKIE, cookie);
    }
    response
}

/// A page that says what went wrong, with `status`.
pub(super) fn problem(base: &str, status: StatusCode, message: &str) -> Response {
    let body = html! {
        h1 { (status.canonical_reason().unwrap_or("Error")) }
        p.problem { (message) }
        p { a href=(home(base)) { "Back to the runs" } }
    };
    page_with(base, Nav::Runs, "Error", body, status, None)
}

/// The scripts a drawing page may load: the console's own, and the
/// Mermaid module when another origin serves it. `None` for a URL a
/// policy cannot name safely (quotes, spaces, `;`).
fn script_source(url: &str) -> Option<String> {
    if url
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, ';' | ',' | '\'' | '"'))
    {
        return None;
    }
    Some(
        if url.starts_with("https://") || url.starts_with("http://") {
            format!("'self' {url}")
        } else {
            "'self'".to_owned()
        },
    )
}

/// The console's one script, served only when it draws diagrams: loads
/// Mermaid from the app's URL and draws every `pre.mermaid` (labels are
/// escaped: `securityLevel: "strict"`).
pub(super) fn drawing_script(mermaid: &str) -> Response {
    let url = serde_json::to_string(mermaid).unwrap_or_else(|_| "\"\"".to_owned());
    let script = format!(
        "import mermaid from {url};\n\
         mermaid.initialize({{ startOnLoad: false, securityLevel: \"strict\" }});\n\
         await mermaid.run({{ querySelector: \"pre.mermaid\" }});\n"
    );
    let mut response = script.into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    response
}

pub(super) async fn stylesheet() -> Response {
    let mut response = STYLE.into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    response
}

/// A status as a badge.
pub(super) fn badge(status: &str) -> Markup {
    html! { span class={ "badge " (status) } { (status.replace('_', " ")) } }
}

/// A time in ms since the Unix epoch as UTC: `2026-12-05 14:03:07`.
pub(super) fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The calendar date `days` after 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A UTC day (`2026-12-05`) or minute (`2026-12-05T14:30`, as a browser's
/// `datetime-local` input sends it, or with a space) as ms since the Unix
/// epoch; `None` when it is neither.
pub(super) fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    let (day, minute) = match text.split_once(['T', ' ']) {
        Some((day, minute)) => (day, Some(minute)),
        None => (text, None),
    };
    let mut parts = day.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (hh, mm) = match minute {
        Some(minute) => {
            let (h, m) = minute.split_once(':')?;
            let (h, m): (i64, i64) = (h.parse().ok()?, m.get(..2).unwrap_or(m).parse().ok()?);
            if !(0..24).contains(&h) || !(0..60).contains(&m) {
                return None;
            }
            (h, m)
        }
        None => (0, 0),
    };
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000)
}

/// A duration in ms, as a person reads it: `850 ms`, `4.2 s`, `3 min 5 s`,
/// `2 h 10 min`, `3 d 4 h`.
pub(super) fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
        3_600_000..86_400_000 => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
        _ => format!("{} d {} h", ms / 86_400_000, ms % 86_400_000 / 3_600_000),
    }
}

/// A journaled payload for reading: JSON pretty-printed, other text as
/// it is, bytes by their length.
pub(super) fn payload(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_else(|_| text.to_owned()),
            Err(_) => text.to_owned(),
        },
        Err(_) => format!("({} bytes, not text)", bytes.len()),
    }
}

/// A hidden form field.
pub(super) fn hidden(name: &str, value: &str) -> Markup {
    html! { input type="hidden" name=(name) value=(value); }
}

const STYLE: &str = r#"
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); }
header { background: #24292f; padding: 0 24px; }
header nav { display: flex; gap: 20px; align-items: center; height: 48px; }
header a { color: #d0d7de; text-decoration: none; }
header a.current, header a:hover { color: #fff; }
header a.brand { color: #fff; font-weight: 600; margin-right: 12px; }
main { padding: 20px 24px; max-width: 1200px; }
h1 { font-size: 20px; margin: 0 0 12px; word-break: break-all; }
h2 { font-size: 16px; margin: 24px 0 8px; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.id { font-family: ui-monospace, monospace; word-break: break-all; }
pre { background: var(--bg); border: 1px solid var(--line); padding: 10px; overflow: auto; max-height: 320px; margin: 0; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; font-weight: 600; background: #eaeef2; }
.badge.running { background: #ddf4ff; color: #0550ae; }
.badge.completed { background: #dafbe1; color: #116329; }
.badge.failed, .badge.compensation_failed { background: #ffebe9; color: #a40e26; }
.badge.cancelled { background: #fff1e5; color: #953800; }
.badge.stuck, .badge.incompatible { background: #fbefff; color: #6e40c9; }
.counts { display: flex; gap: 10px; flex-wrap: wrap; margin: 0 0 14px; }
.counts a { text-decoration: none; border: 1px solid var(--line); border-radius: 6px; padding: 4px 10px; color: var(--fg); }
.counts a.current { border-color: var(--accent); }
form.filters { display: flex; gap: 8px; flex-wrap: wrap; align-items: end; margin-bottom: 14px; }
label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 2px; }
input, select, textarea { font: inherit; padding: 4px 6px; border: 1px solid var(--line); border-radius: 6px; }
button, .button { font: inherit; padding: 4px 12px; border-radius: 6px; border: 1px solid var(--line); background: var(--bg); cursor: pointer; color: var(--fg); text-decoration: none; }
button.danger, .button.danger { color: #a40e26; border-color: #ff8182; }
.pager { margin-top: 12px; display: flex; gap: 12px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0 0 12px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; word-break: break-all; }
.actions { display: flex; gap: 8px; margin: 8px 0 16px; }
.problem { color: #a40e26; }
.muted { color: var(--muted); }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
svg.timeline { width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
svg.timeline text { font: 12px system-ui, sans-serif; fill: var(--fg); }
svg.timeline .axis { stroke: var(--line); }
svg.timeline .tick { fill: var(--muted); }
svg.timeline .completed { fill: #2da44e; }
svg.timeline .failed { fill: #cf222e; }
svg.timeline .compensated { fill: #bc4c00; }
svg.timeline .running { fill: #0969da; }
svg.timeline .waiting { fill: #8c959f; }
svg.timeline .pending { fill: #eaeef2; }
.legend { display: flex; gap: 14px; font-size: 12px; color: var(--muted); margin: 6px 0 0; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }
.legend .completed { background: #2da44e; } .legend .failed { background: #cf222e; }
.legend .compensated { background: #bc4c00; } .legend .running { background: #0969da; }
.legend .waiting { background: #8c959f; }
"#;

/// `?a=1&b=2` from the pairs with a value, each percent-encoded.
pub(super) fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (name, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(name);
        out.push('=');
        for byte in value.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(char::from(byte));
                }
                _ => out.push_str(&format!("%{byte:02X}")),
            }
        }
    }
    out
}

/// The runs page: the mount point itself (`/workflows`), or `/` at the
/// root.
pub(super) fn home(base: &str) -> &str {
    if base.is_empty() { "/" } else { base }
}
