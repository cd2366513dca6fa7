//! The `runs` example's commands: the console's queries and actions from
//! a shell, over the SQLite file or the PostgreSQL database a service
//! journals its runs in.

use std::time::Duration;

use workflow_runtime::durable::{Cursor, Retention, RunFilter, RunReport, RunStatus, Store};
use workflow_runtime::host::Runner;

/// What `--help` prints.
pub const HELP: &str = "runs: list, show and act on durable runs

USAGE: cargo run --example runs -- COMMAND [ARGS] --db FILE|URL

COMMANDS
  list [--workflow NAME] [--status STATUS] [--prefix ID] [--since TIME] [--until TIME]
       [--after CURSOR] [--limit N]
                       runs newest first, a page at a time (the last line gives the next
                       page's --after); and the runs per workflow and status. TIME is UTC,
                       2026-12-05 or 2026-12-05T14:30; --since includes it, --until not
  show ID              one run: status, where it waits, its steps, events, family
  cancel ID [--reason TEXT]
                       asks the run to stop; its compensations undo what it did
  redrive ID           puts a failed (or parked: stuck, incompatible) run back to work
  send ID NAME JSON    sends event NAME with the JSON payload to the run
  purge [--keep-days N] [--keep-at-most N]
                       removes runs that ended more than N days ago, or past the newest
                       N of their workflow

  --db FILE|URL        the SQLite file (orders.db) or postgres://… (env RUNS_DB)

The service that runs the workflow takes a cancelled, redriven or woken run up
(at its next look: at most a minute on SQLite, a lease's third on PostgreSQL).";

/// What went wrong, for a person at a shell.
pub type Error = Box<dyn std::error::Error>;

/// A line of the command's output.
macro_rules! say {
    ($out:expr, $($t:tt)*) => {{
        use std::fmt::Write;
        let _ = writeln!($out, $($t)*);
    }};
}

/// The arguments: positionals in order, `--flag value` pairs by name.
struct Args {
    positional: Vec<String>,
    flags: Vec<(String, String)>,
}

impl Args {
    fn parse(args: Vec<String>) -> Result<Args, Error> {
        let (mut positional, mut flags) = (Vec::new(), Vec::new());
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if let Some(flag) = arg.strip_prefix("--") {
                if flag == "help" {
                    flags.push(("help".to_owned(), String::new()));
                    continue;
                }
                let value = args
                    .next()
                    .ok_or_else(|| format!("--{flag} needs a value"))?;
                flags.push((flag.to_owned(), value));
            } else {
                positional.push(arg);
            }
        }
        Ok(Args { positional, flags })
    }

    fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn nth(&self, n: usize, what: &str) -> Result<&str, Error> {
        self.positional
            .get(n)
            .map(String::as_str)
            .ok_or_else(|| format!("{} needs {what}; see --help", self.positional[0]).into())
    }
}

async fn open(db: &str) -> Result<Store, Error> {
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        Ok(Store::postgres(db).await?)
    } else if std::path::Path::new(db).exists() {
        Ok(Store::sqlite(db).await?)
    } else {
        Err(format!("{db}: no such file (and not a postgres:// URL)").into())
    }
}

/// Runs the command `args` (as after the program's name), writing what it
/// prints to `out`.
pub async fn run(args: Vec<String>, out: &mut String) -> Result<(), Error> {
    let args = Args::parse(args)?;
    if args.flag("help").is_some() || args.positional.is_empty() {
        say!(out, "{HELP}");
        return Ok(());
    }
    let known = [
        "db",
        "workflow",
        "status",
        "prefix",
        "since",
        "until",
        "after",
        "limit",
        "reason",
        "keep-days",
        "keep-at-most",
    ];
    if let Some((flag, _)) = args
        .flags
        .iter()
        .find(|(f, _)| !known.contains(&f.as_str()))
    {
        return Err(format!("unknown flag --{flag}; see --help").into());
    }
    let db = match args.flag("db") {
        Some(db) => db.to_owned(),
        None => std::env::var("RUNS_DB").map_err(|_| "--db FILE|URL is needed (or RUNS_DB)")?,
    };
    let store = open(&db).await?;
    let runner = Runner::builder().store(store.clone()).build()?;
    match args.positional[0].as_str() {
        "list" => list(&store, &args, out).await,
        "show" => {
            let report = runner.status(args.nth(1, "a run id")?).await?;
            show(&report, out);
            Ok(())
        }
        "cancel" => {
            let reason = args
                .flag("reason")
                .unwrap_or("cancelled from the command line");
            let id = args.nth(1, "a run id")?;
            runner.cancel(id, reason).await?;
            say!(
                out,
                "asked {id} to stop ({reason}); the service undoes it at its next look"
            );
            Ok(())
        }
        "redrive" => {
            let id = args.nth(1, "a run id")?;
            runner.redrive(id).await?;
            say!(out, "{id} is back at work");
            Ok(())
        }
        "send" => {
            let (id, name) = (args.nth(1, "a run id")?, args.nth(2, "an event name")?);
            let payload = serde_json::from_str(args.nth(3, "a JSON payload")?)
                .map_err(|e| format!("the payload is not JSON: {e}"))?;
            let seq = runner.send_json(id, name, payload).await?;
            say!(out, "sent {name} to {id} (event {seq})");
            Ok(())
        }
        "purge" => {
            let mut policy = Retention::new();
            if let Some(days) = args.flag("keep-days") {
                let days: u64 = days
                    .parse()
                    .map_err(|_| format!("--keep-days {days:?} is not a number"))?;
                let secs = days.checked_mul(86_400).ok_or("--keep-days is too large")?;
                policy = policy.keep_for(Duration::from_secs(secs));
            }
            if let Some(n) = args.flag("keep-at-most") {
                let n: u64 = n
                    .parse()
                    .map_err(|_| format!("--keep-at-most {n:?} is not a number"))?;
                policy = policy.keep_at_most(n);
            }
            if policy.keep_for.is_none() && policy.keep_at_most.is_none() {
                return Err("purge needs --keep-days or --keep-at-most".into());
            }
            say!(out, "removed {} runs", runner.purge(&policy).await?);
            Ok(())
        }
        other => Err(format!("unknown command {other:?}; see --help").into()),
    }
}

async fn list(store: &Store, args: &Args, out: &mut String) -> Result<(), Error> {
    let mut filter = RunFilter::new();
    if let Some(workflow) = args.flag("workflow") {
        filter = filter.workflow(workflow);
    }
    if let Some(status) = args.flag("status") {
        let status = RunStatus::parse(status).ok_or_else(|| {
            format!("there is no status {status:?} (running, completed, failed, compensation_failed, cancelled, stuck, incompatible)")
        })?;
        filter = filter.status(status);
    }
    if let Some(prefix) = args.flag("prefix") {
        filter = filter.id_prefix(prefix);
    }
    if let Some(since) = args.flag("since") {
        filter = filter.since_ms(ms_of(since)?);
    }
    if let Some(until) = args.flag("until") {
        filter = filter.until_ms(ms_of(until)?);
    }
    if let Some(after) = args.flag("after") {
        filter = filter.after(after.parse::<Cursor>()?);
    }
    if let Some(limit) = args.flag("limit") {
        filter = filter.limit(
            limit
                .parse()
                .map_err(|_| format!("--limit {limit:?} is not a number"))?,
        );
    }
    let page = store.runs(&filter).await?;
    say!(
        out,
        "{:<20} {:<40} {:<20} {:<20} error",
        "workflow",
        "run",
        "status",
        "started (UTC)"
    );
    for run in &page.runs {
        say!(
            out,
            "{:<20} {:<40} {:<20} {:<20} {}",
            run.workflow,
            run.id,
            run.status.as_str(),
            utc(run.created_ms),
            run.error.as_deref().unwrap_or("")
        );
    }
    match &page.next {
        Some(next) => say!(out, "more: --after {next}"),
        None => say!(out, "({} runs, no more)", page.runs.len()),
    }
    say!(out, "");
    for (workflow, counts) in store.counts_by_workflow().await? {
        say!(
            out,
            "{workflow}: {} running, {} completed, {} failed, {} compensation failed, {} cancelled, {} parked",
            counts.running,
            counts.completed,
            counts.failed,
            counts.compensation_failed,
            counts.cancelled,
            counts.stuck + counts.incompatible
        );
    }
    Ok(())
}

fn show(report: &RunReport, out: &mut String) {
    say!(out, "{} {}: {}", report.workflow, report.id, report.status);
    say!(out, "  started  {}", utc(report.created_ms));
    say!(out, "  updated  {}", utc(report.updated_ms));
    if let Some(step) = report.current_step.as_deref().filter(|s| !s.is_empty()) {
        say!(out, "  step     {step}");
    }
    if let Some(waiting) = &report.waiting {
        say!(out, "  waiting  {waiting:?}");
    }
    if let Some(reason) = &report.cancel {
        say!(out, "  cancel   {reason}");
    }
    if let Some(error) = &report.error {
        say!(out, "  error    {error}");
    }
    if let Some(parent) = &report.parent {
        say!(out, "  parent   {parent}");
    }
    for child in &report.children {
        say!(out, "  child    {child}");
    }
    for earlier in &report.earlier_failures {
        say!(out, "  failed before: {earlier}");
    }
    say!(out, "  steps:");
    for step in &report.steps {
        say!(
            out,
            "    {}. {:<30} {:<12} {} attempt(s){}",
            step.index + 1,
            // A step not reached, or waiting, is named by the definition,
            // which this tool does not link.
            if step.title.is_empty() {
                "(untitled)"
            } else {
                &step.title
            },
            format!("{:?}", step.state).to_lowercase(),
            step.attempts,
            step.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    for event in &report.events {
        say!(
            out,
            "  event {} {:?} sent {}{}",
            event.seq,
            event.name,
            utc(event.sent_ms),
            if event.consumed { ", consumed" } else { "" }
        );
    }
}

/// A UTC day (`2026-12-05`) or minute (`2026-12-05T14:30`, or with a
/// space) as ms since the Unix epoch.
fn ms_of(text: &str) -> Result<i64, Error> {
    let minute = chrono::NaiveDateTime::parse_from_str(&text.replace(' ', "T"), "%Y-%m-%dT%H:%M");
    let day = || {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(|day| day.and_hms_opt(0, 0, 0).unwrap_or_default())
    };
    let at = minute
        .or_else(|_| day())
        .map_err(|_| format!("{text:?} is not a UTC time like 2026-12-05 or 2026-12-05T14:30"))?;
    Ok(at.and_utc().timestamp_millis())
}

/// Ms since the Unix epoch as UTC, to the second.
fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}
