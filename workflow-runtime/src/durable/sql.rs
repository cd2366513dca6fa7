//! SQL the two database stores share word for word: listing runs and
//! picking the runs a retention policy removes. Each store runs it on its
//! own connection, with its own placeholders.

use sqlx::{Database, Encode, QueryBuilder, Type};

/// The statuses a purge removes, as SQL: the stores' word for
/// [`PURGEABLE`](super::retention::PURGEABLE).
macro_rules! ended {
    () => {
        "'completed', 'failed', 'compensation_failed', 'cancelled'"
    };
}
#[cfg(feature = "postgres")]
pub(crate) use ended;

use super::query::RunFilter;
use super::retention::Purge;

/// `SELECT * FROM workflow_runs` narrowed by `filter`, newest first, one
/// row more than the page: workflow and status are columns the listing
/// indexes lead with, and the time range and the page's key bound their
/// order, so such a page costs the same at a thousand runs and a million.
/// An id prefix is matched exactly along that order: a prefix few runs
/// have reads further. `explain` puts the database's word for "how would
/// you read it" first.
pub(crate) fn list_runs<DB>(explain: &str, filter: &RunFilter) -> QueryBuilder<DB>
where
    DB: Database,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    let mut sql = QueryBuilder::new(format!("{explain}SELECT * FROM workflow_runs WHERE TRUE"));
    if let Some(workflow) = &filter.workflow {
        sql.push(" AND workflow = ").push_bind(workflow.clone());
    }
    if let Some(status) = filter.status {
        sql.push(" AND status = ")
            .push_bind(status.as_str().to_owned());
    }
    if let Some(since) = filter.since_ms {
        sql.push(" AND created_ms >= ").push_bind(since);
    }
    if let Some(until) = filter.until_ms {
        sql.push(" AND created_ms < ").push_bind(until);
    }
    if let Some(prefix) = &filter.id_prefix {
        sql.push(" AND substr(id, 1, length(")
            .push_bind(prefix.clone())
            .push(")) = ")
            .push_bind(prefix.clone());
    }
    if let Some(after) = &filter.after {
        sql.push(" AND (created_ms, id) < (")
            .push_bind(after.created_ms)
            .push(", ")
            .push_bind(after.id.clone())
            .push(")");
    }
    let limit = i64::try_from(filter.page_size() + 1).unwrap_or(i64::MAX);
    sql.push(" ORDER BY created_ms DESC, id DESC LIMIT ")
        .push_bind(limit);
    sql
}

/// The ids of at most a batch of runs `purge` removes: ended runs whose
/// row last changed before its time, or past each workflow's newest so
/// many; never a child whose parent still runs (it reads the child's
/// result when it wakes).
pub(crate) fn purge_ids<DB>(purge: &Purge) -> QueryBuilder<DB>
where
    DB: Database,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    let mut sql = QueryBuilder::new(concat!(
        "SELECT id FROM (
             SELECT id, updated_ms, parent,
                    row_number() OVER (PARTITION BY workflow ORDER BY created_ms DESC, id DESC)
                        AS newest
             FROM workflow_runs WHERE status IN (",
        ended!(),
        ")
         ) AS ended
         WHERE NOT EXISTS (SELECT 1 FROM workflow_runs AS parents
                           WHERE parents.id = ended.parent AND parents.status = 'running')
           AND (FALSE"
    ));
    if let Some(before) = purge.ended_before_ms {
        sql.push(" OR updated_ms < ").push_bind(before);
    }
    if let Some(keep) = purge.keep_at_most {
        sql.push(" OR newest > ")
            .push_bind(i64::try_from(keep).unwrap_or(i64::MAX));
    }
    sql.push(") LIMIT ")
        .push_bind(i64::try_from(purge.batch).unwrap_or(i64::MAX));
    sql
}

/// A run's rows, children first, as a purge deletes them (`?` for the
/// run's id: the SQLite store runs each per run).
#[cfg(feature = "sqlite")]
pub(crate) const DELETE_RUN: [&str; 4] = [
    "DELETE FROM workflow_steps WHERE run_id = ?",
    "DELETE FROM workflow_failures WHERE run_id = ?",
    "DELETE FROM workflow_events WHERE run_id = ?",
    "DELETE FROM workflow_runs WHERE id = ?",
];

/// The same for a batch of runs (`$1`, an array of ids), as PostgreSQL
/// takes it.
#[cfg(feature = "postgres")]
pub(crate) const DELETE_RUNS: [&str; 4] = [
    "DELETE FROM workflow_steps WHERE run_id = ANY($1)",
    "DELETE FROM workflow_failures WHERE run_id = ANY($1)",
    "DELETE FROM workflow_events WHERE run_id = ANY($1)",
    "DELETE FROM workflow_runs WHERE id = ANY($1)",
];
