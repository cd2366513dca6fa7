//! The floor durable runs are measured against: a hand-written
//! group-commit writer. Each run sends its five rows (the run, three
//! steps, its end) one after another, waiting for each to commit; the
//! writer takes everything queued, writes it with one multi-row statement
//! per kind in one transaction, commits, then wakes each sender. No
//! journal, no codec, no recovery: only the rows and the syncs.

use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use tokio::sync::{mpsc, oneshot};

enum Row {
    Run(String),
    Step(String, i64),
    End(String),
}

type Queued = (Row, oneshot::Sender<()>);

/// Sends rows to the writer task.
#[derive(Clone)]
pub struct Floor {
    rows: mpsc::UnboundedSender<Queued>,
}

impl Floor {
    /// Spawns the writer on `pool`'s database.
    pub fn spawn(pool: SqlitePool) -> Self {
        let (rows, queue) = mpsc::unbounded_channel();
        tokio::spawn(write(pool, queue));
        Floor { rows }
    }

    async fn send(&self, row: Row) {
        let (done, committed) = oneshot::channel();
        self.rows.send((row, done)).unwrap();
        committed.await.unwrap();
    }

    /// The five writes of a 3-step run, each durable before the next.
    pub async fn run(&self, id: String) {
        self.send(Row::Run(id.clone())).await;
        for index in 0..3 {
            self.send(Row::Step(id.clone(), index)).await;
        }
        self.send(Row::End(id)).await;
    }
}

async fn write(pool: SqlitePool, mut queue: mpsc::UnboundedReceiver<Queued>) {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, 256).await > 0 {
        let mut tx = pool.begin().await.unwrap();
        let runs: Vec<&str> = batch
            .iter()
            .filter_map(|(row, _)| match row {
                Row::Run(id) => Some(id.as_str()),
                _ => None,
            })
            .collect();
        if !runs.is_empty() {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO workflow_runs
                 (id, workflow, fingerprint, status, input, created_ms, updated_ms) ",
            );
            q.push_values(&runs, |mut v, id| {
                v.push_bind(id.to_string())
                    .push_bind("Three")
                    .push_bind("f")
                    .push_bind("running")
                    .push_bind("1")
                    .push_bind(0_i64)
                    .push_bind(0_i64);
            });
            q.build().persistent(false).execute(&mut *tx).await.unwrap();
        }
        let steps: Vec<(&str, i64)> = batch
            .iter()
            .filter_map(|(row, _)| match row {
                Row::Step(id, index) => Some((id.as_str(), *index)),
                _ => None,
            })
            .collect();
        if !steps.is_empty() {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO workflow_steps
                 (run_id, step_index, title, output, attempts, started_ms, ended_ms) ",
            );
            q.push_values(&steps, |mut v, (id, index)| {
                v.push_bind(id.to_string())
                    .push_bind(*index)
                    .push_bind("doubled")
                    .push_bind("42")
                    .push_bind(1_i64)
                    .push_bind(0_i64)
                    .push_bind(0_i64);
            });
            q.build().persistent(false).execute(&mut *tx).await.unwrap();
        }
        let ends: Vec<&str> = batch
            .iter()
            .filter_map(|(row, _)| match row {
                Row::End(id) => Some(id.as_str()),
                _ => None,
            })
            .collect();
        if !ends.is_empty() {
            let mut q = QueryBuilder::<Sqlite>::new(
                "UPDATE workflow_runs SET status = 'completed', output = '4' WHERE id IN (",
            );
            let mut ids = q.separated(", ");
            for id in &ends {
                ids.push_bind(id.to_string());
            }
            q.push(")");
            q.build().persistent(false).execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
        for (_, done) in batch.drain(..) {
            let _ = done.send(());
        }
    }
}
