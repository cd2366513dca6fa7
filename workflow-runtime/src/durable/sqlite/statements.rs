//! The writer's statements, and how a batch sends them: one multi-row
//! statement per kind of write, and the statements that follow one
//! another sent as one script. Each crossing to sqlx's SQLite thread and
//! back costs more than the statements it carries (tens of microseconds
//! a crossing on a busy runtime, for statements of a few each), so a
//! batch's new runs, steps, ends, the parents those ends wake, and its
//! first lend's savepoint and read go over together, and each lent
//! step's row goes with the next lend's.
//!
//! A statement that fails alone ([`fails_alone`]) leaves the ones before
//! it made and the ones after it unsent. New runs and steps fall back to
//! a row at a time, so only the write refused fails; a lent step's row
//! refused rolls its step's writes back with it; any other statement's
//! failure fails the batch. The rest go on as a script of their own.

use std::collections::HashSet;

use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{Either, Executor, QueryBuilder, Row, Sqlite};

use super::SqliteStore;
use super::group_commit::{Outcome, fails_alone};
use crate::durable::journal::awaiting_child;
use crate::durable::store::{RunEnd, RunRow, StepRow};

/// One statement of a batch's script.
pub(super) enum Part<'w> {
    /// New runs, by write index: each `1` if its id was free.
    Runs(Vec<(usize, &'w RunRow)>),
    /// Steps' rows, by write index.
    Steps(Vec<(usize, &'w str, &'w StepRow)>),
    /// Ends of distinct runs, by write index: each `1` if its run was
    /// running.
    Ends(Vec<(usize, &'w str, &'w RunEnd, i64)>),
    /// Wakes the parent waiting for each of these runs, once ended: after
    /// their ends, and before any lend's savepoint, which a step given
    /// back unkept rolls back.
    Wakes(Vec<&'w str>),
    /// The row of the step lent the transaction as write `.0`, given back
    /// kept: `1`, or its step's refusal after rolling its writes back.
    Lent(usize, &'w str, &'w StepRow),
    /// Undoes what the step lent the transaction last wrote; the
    /// savepoint stays, for the next.
    RollBack,
    /// Opens the savepoint the next lend writes under. Never released:
    /// the batch's COMMIT releases every savepoint under it, and the next
    /// one nests inside (its name finds the innermost).
    Savepoint,
    /// The step's row as the transaction sees it, read for the step about
    /// to be lent it (an earlier attempt may have committed).
    Recorded(&'w str, u32),
}

impl Part<'_> {
    /// Appends the statement to `script`.
    fn push(&self, script: &mut QueryBuilder<Sqlite>) {
        match self {
            Part::Runs(rows) => push_runs(script, rows.iter().map(|&(_, row)| row)),
            Part::Steps(rows) => push_steps(script, rows.iter().map(|&(_, run, row)| (run, row))),
            Part::Lent(_, run, row) => push_steps(script, [(*run, *row)]),
            Part::Ends(ends) => push_ends(script, ends),
            Part::Wakes(runs) => push_wakes(script, runs),
            Part::RollBack => {
                script.push("ROLLBACK TO SAVEPOINT lent");
            }
            Part::Savepoint => {
                script.push("SAVEPOINT lent");
            }
            Part::Recorded(run, index) => {
                script
                    .push(
                        "SELECT step_index, title, output, attempts, started_ms, ended_ms
                         FROM workflow_steps WHERE run_id = ",
                    )
                    .push_bind(run.to_string())
                    .push(" AND step_index = ")
                    .push_bind(i64::from(*index));
            }
        }
        script.push(";\n");
    }

    /// Takes the statement's rows into the writes' outcomes.
    fn took(&self, rows: Vec<SqliteRow>, done: &mut Done<'_>) -> Result<(), sqlx::Error> {
        match self {
            Part::Runs(starts) => {
                let inserted = rows
                    .iter()
                    .map(|row| row.try_get::<String, _>(0))
                    .collect::<Result<HashSet<_>, _>>()?;
                // Rows go in in order: of two starts of one id, the first
                // wrote it.
                let mut first = HashSet::new();
                for &(i, row) in starts {
                    done.outcomes[i] = Some(Ok(u64::from(
                        inserted.contains(&row.id) && first.insert(row.id.as_str()),
                    )));
                }
            }
            Part::Steps(steps) => {
                for &(i, ..) in steps {
                    done.outcomes[i] = Some(Ok(1));
                }
            }
            Part::Lent(i, ..) => done.outcomes[*i] = Some(Ok(1)),
            Part::Ends(ends) => {
                let ended = rows
                    .iter()
                    .map(|row| row.try_get::<String, _>(0))
                    .collect::<Result<HashSet<_>, _>>()?;
                for &(i, run, ..) in ends {
                    done.outcomes[i] = Some(Ok(u64::from(ended.contains(run))));
                }
            }
            Part::Wakes(_) | Part::RollBack | Part::Savepoint => {}
            Part::Recorded(..) => done.recorded = Some(rows),
        }
        Ok(())
    }

    /// After the statement failed with `error`, which left the
    /// transaction as it was: each of its writes alone, so only those
    /// refused fail. A failure it cannot take alone fails the batch.
    async fn alone(
        &self,
        store: &SqliteStore,
        conn: &mut SqliteConnection,
        error: sqlx::Error,
        done: &mut Done<'_>,
    ) -> Result<(), sqlx::Error> {
        match self {
            Part::Runs(starts) => {
                if let [(i, row)] = starts[..] {
                    let error = store.error(format!("starting run \"{}\"", row.id), error);
                    done.outcomes[i] = Some(Err(error));
                    return Ok(());
                }
                for &(i, row) in starts {
                    let part = Part::Runs(vec![(i, row)]);
                    match run(conn, std::slice::from_ref(&part)).await {
                        (ran, None) => {
                            for rows in ran {
                                part.took(rows, done)?;
                            }
                        }
                        (_, Some(e)) if fails_alone(&e) => {
                            let error = store.error(format!("starting run \"{}\"", row.id), e);
                            done.outcomes[i] = Some(Err(error));
                        }
                        (_, Some(e)) => return Err(e),
                    }
                }
            }
            Part::Steps(steps) => {
                if let [(i, run_id, row)] = steps[..] {
                    done.outcomes[i] = Some(Err(store.step_refused(run_id, row.index, error)));
                    return Ok(());
                }
                for &(i, run_id, row) in steps {
                    let part = Part::Steps(vec![(i, run_id, row)]);
                    done.outcomes[i] = Some(match run(conn, std::slice::from_ref(&part)).await {
                        (_, None) => Ok(1),
                        (_, Some(e)) if fails_alone(&e) => {
                            Err(store.step_refused(run_id, row.index, e))
                        }
                        (_, Some(e)) => return Err(e),
                    });
                }
            }
            Part::Lent(i, run_id, row) => {
                // The step's writes go with its row.
                if let (_, Some(e)) = run(conn, &[Part::RollBack]).await {
                    return Err(e);
                }
                done.outcomes[*i] = Some(Err(store.step_refused(run_id, row.index, error)));
            }
            Part::Ends(_)
            | Part::Wakes(_)
            | Part::RollBack
            | Part::Savepoint
            | Part::Recorded(..) => {
                return Err(error);
            }
        }
        Ok(())
    }
}

/// What a batch's statements came to: each write's outcome, and the rows
/// read for the next lend.
pub(super) struct Done<'o> {
    pub(super) outcomes: &'o mut [Option<Outcome>],
    pub(super) recorded: Option<Vec<SqliteRow>>,
}

impl<'o> Done<'o> {
    pub(super) fn new(outcomes: &'o mut [Option<Outcome>]) -> Self {
        Done {
            outcomes,
            recorded: None,
        }
    }
}

/// The journal's own writes among `writes`, as statements: the new runs,
/// the steps, the ends (a run ended twice in one batch, two drivers
/// racing, is ended by the first; the second, a statement of its own,
/// finds it ended), and the parents they wake.
pub(super) fn journal_parts<'w>(writes: &'w [super::group_commit::Write]) -> Vec<Part<'w>> {
    use super::group_commit::Write;
    let (mut runs, mut steps, mut ends, mut again) = (vec![], vec![], vec![], vec![]);
    let mut ended = Vec::new();
    let mut ending = HashSet::new();
    for (i, write) in writes.iter().enumerate() {
        match write {
            Write::Start(row) => runs.push((i, row)),
            Write::Step { run, row } => steps.push((i, run.as_str(), row)),
            Write::Finish { run, end, now_ms } => {
                let end = (i, run.as_str(), end, *now_ms);
                if ending.insert(run.as_str()) {
                    ended.push(run.as_str());
                    ends.push(end);
                } else {
                    // One at a time: each row of an UPDATE … FROM must
                    // meet a run once.
                    again.push(Part::Ends(vec![end]));
                }
            }
            Write::Execute(_) | Write::Lend(_) => {}
        }
    }
    let mut parts = Vec::with_capacity(4 + again.len());
    if !runs.is_empty() {
        parts.push(Part::Runs(runs));
    }
    if !steps.is_empty() {
        parts.push(Part::Steps(steps));
    }
    if !ends.is_empty() {
        parts.push(Part::Ends(ends));
    }
    parts.extend(again);
    if !ended.is_empty() {
        parts.push(Part::Wakes(ended));
    }
    parts
}

/// Makes `parts` in `conn`'s transaction, in as few scripts as their
/// failures allow.
pub(super) async fn write(
    store: &SqliteStore,
    conn: &mut SqliteConnection,
    parts: &[Part<'_>],
    done: &mut Done<'_>,
) -> Result<(), sqlx::Error> {
    let mut rest = parts;
    while !rest.is_empty() {
        let (ran, failed) = run(conn, rest).await;
        let made = ran.len();
        for (part, rows) in rest.iter().zip(ran) {
            part.took(rows, done)?;
        }
        let Some(error) = failed else { break };
        if !fails_alone(&error) {
            return Err(error);
        }
        rest[made].alone(store, conn, error, done).await?;
        rest = &rest[made + 1..];
    }
    Ok(())
}

/// Sends `parts` as one script: the rows of each statement made, in
/// order, and the error of the one that failed, if one did (those after
/// it were not sent).
async fn run(
    conn: &mut SqliteConnection,
    parts: &[Part<'_>],
) -> (Vec<Vec<SqliteRow>>, Option<sqlx::Error>) {
    let mut script = QueryBuilder::<Sqlite>::new("");
    for part in parts {
        part.push(&mut script);
    }
    // A script of one small shape is worth keeping prepared: a lone
    // step's row, a savepoint and its read.
    let persistent = parts.len() <= 3
        && parts.iter().all(|part| match part {
            Part::Runs(rows) => rows.len() == 1,
            Part::Steps(rows) => rows.len() == 1,
            Part::Ends(rows) => rows.len() == 1,
            Part::Wakes(runs) => runs.len() == 1,
            _ => true,
        });
    let query = script.build().persistent(persistent);
    let mut ran = Vec::with_capacity(parts.len());
    let mut rows = Vec::new();
    let mut stream = conn.fetch_many(query);
    loop {
        match std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
            Some(Ok(Either::Right(row))) => rows.push(row),
            Some(Ok(Either::Left(_))) => ran.push(std::mem::take(&mut rows)),
            None => return (ran, None),
            Some(Err(error)) => return (ran, Some(error)),
        }
    }
}

/// Appends an INSERT of the runs `rows` unless their ids are taken,
/// returning the ids written.
fn push_runs<'r>(script: &mut QueryBuilder<Sqlite>, rows: impl IntoIterator<Item = &'r RunRow>) {
    script.push(
        "INSERT INTO workflow_runs
         (id, workflow, fingerprint, status, input, created_ms, updated_ms, codec,
          waiting, wake_ms, parent, trace) ",
    );
    script.push_values(rows, |mut values, run| {
        values
            .push_bind(run.id.clone())
            .push_bind(run.workflow.clone())
            .push_bind(run.fingerprint.clone())
            .push_bind(run.status.as_str());
        bind_payload(&mut values, &run.input);
        values
            .push_bind(run.created_ms)
            .push_bind(run.updated_ms)
            .push_bind(run.codec.clone())
            .push_bind(run.waiting.clone())
            .push_bind(run.wake_ms)
            .push_bind(run.parent.clone())
            .push_bind(run.trace.clone());
    });
    script.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
}

/// Appends an INSERT of the step rows `rows` of their runs.
fn push_steps<'r>(
    script: &mut QueryBuilder<Sqlite>,
    rows: impl IntoIterator<Item = (&'r str, &'r StepRow)>,
) {
    script.push(
        "INSERT INTO workflow_steps
         (run_id, step_index, title, output, attempts, started_ms, ended_ms) ",
    );
    script.push_values(rows, |mut values, (run, step)| {
        values
            .push_bind(run.to_owned())
            .push_bind(i64::from(step.index))
            .push_bind(step.title.clone());
        bind_payload(&mut values, &step.output);
        values
            .push_bind(i64::from(step.attempts))
            .push_bind(step.started_ms)
            .push_bind(step.ended_ms);
    });
}

/// Appends an UPDATE ending the distinct runs `ends`, each with its
/// outcome, returning each run ended.
fn push_ends(script: &mut QueryBuilder<Sqlite>, ends: &[(usize, &str, &RunEnd, i64)]) {
    script.push(
        "UPDATE workflow_runs SET status = v.column2, output = v.column3, error = v.column4,
         failed_step = v.column5, updated_ms = v.column6, waiting = NULL, wake_ms = NULL
         FROM (",
    );
    script.push_values(ends, |mut values, &(_, run, end, now_ms)| {
        let (status, output, error, step) = end.columns();
        values.push_bind(run.to_owned()).push_bind(status.as_str());
        match output {
            Some(bytes) => bind_payload(&mut values, bytes),
            None => {
                values.push_bind(None::<Vec<u8>>);
            }
        }
        values
            .push_bind(error.map(str::to_owned))
            .push_bind(step.map(str::to_owned))
            .push_bind(now_ms);
    });
    script.push(
        ") AS v WHERE workflow_runs.id = v.column1 AND workflow_runs.status = 'running'
         RETURNING workflow_runs.id",
    );
}

/// Appends an UPDATE making due at once the parent waiting for each of
/// `runs` that has ended: a parent that looks at its child after
/// suspending itself sees one or the other. One woken for a child that
/// ended earlier (its end here a second driver's) looks, and goes on.
fn push_wakes(script: &mut QueryBuilder<Sqlite>, runs: &[&str]) {
    // Due at once, by any clock.
    script
        .push("UPDATE workflow_runs SET wake_ms = ")
        .push_bind(i64::MIN)
        .push(" FROM (");
    script.push_values(runs, |mut values, run| {
        values
            .push_bind(run.to_string())
            .push_bind(awaiting_child(run));
    });
    script.push(
        ") AS v WHERE workflow_runs.waiting = v.column2 AND workflow_runs.id =
         (SELECT parent FROM workflow_runs AS child
          WHERE child.id = v.column1 AND child.status <> 'running')",
    );
}

/// Binds a payload as text when it is UTF-8, as a blob otherwise (as
/// [`super::payload`] does for one row).
fn bind_payload(
    values: &mut sqlx::query_builder::Separated<'_, Sqlite, &'static str>,
    bytes: &[u8],
) {
    match std::str::from_utf8(bytes) {
        Ok(text) => values.push_bind(text.to_owned()),
        Err(_) => values.push_bind(bytes.to_vec()),
    };
}
