//! The guide's message processing over a durable queue: a SQLite table with
//! a visibility timeout. A received message is hidden for the timeout; a
//! message whose processing fails (or whose consumer dies) is not
//! acknowledged and comes back.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::SqlitePool;
use workflow_runtime::host::Runner;
use workflow_runtime::prelude::*;
use workflow_runtime::{StepError, WorkflowError};

/// A message as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its id.
    pub id: i64,
    /// Its body.
    pub body: String,
    /// How many times it was received, this time included.
    pub attempts: u32,
}

/// Processing refused the message.
#[derive(Debug)]
pub struct Poison(pub i64);

impl std::fmt::Display for Poison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "message {} cannot be processed", self.0)
    }
}

impl std::error::Error for Poison {}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The queue and the table processed messages land in.
#[derive(Clone)]
pub struct Queue {
    pool: SqlitePool,
}

impl Queue {
    /// Opens (or creates) the queue at `db`, on a pool of one connection
    /// (see [`open_pool`](crate::db::open_pool)).
    pub async fn open(db: &Path) -> Result<Queue, sqlx::Error> {
        let pool = crate::db::open_pool(db).await?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS queue (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL,
                 visible_at INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
                 acked INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS processed (message_id INTEGER NOT NULL, body TEXT NOT NULL);",
        )
        .execute(&pool)
        .await?;
        Ok(Queue { pool })
    }

    /// Adds a message.
    pub async fn enqueue(&self, body: &str) -> Result<i64, sqlx::Error> {
        let done = sqlx::query("INSERT INTO queue (body) VALUES (?1)")
            .bind(body)
            .execute(&self.pool)
            .await?;
        Ok(done.last_insert_rowid())
    }

    /// Takes the next visible message and hides it for `visibility`.
    pub async fn receive(&self, visibility: Duration) -> Result<Option<Message>, sqlx::Error> {
        // Within this process the pool's one connection already serializes
        // receivers, so a plain `begin()` would do. IMMEDIATE is for
        // consumers in other processes on the same file (the example runs
        // as several): it takes the write lock before the SELECT, so a
        // second consumer waits out the busy timeout. A deferred transaction
        // would read first and then fail with SQLITE_BUSY on upgrading to
        // write, which the busy timeout cannot retry.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = now_ms();
        let message = sqlx::query_as::<_, (i64, String, u32)>(
            "SELECT id, body, attempts FROM queue WHERE acked = 0 AND visible_at <= ?1 ORDER BY id LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .map(|(id, body, attempts)| Message {
            id,
            body,
            attempts: attempts + 1,
        });
        if let Some(m) = &message {
            sqlx::query("UPDATE queue SET visible_at = ?1, attempts = attempts + 1 WHERE id = ?2")
                .bind(now + visibility.as_millis() as i64)
                .bind(m.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(message)
    }

    /// Records the message as processed.
    pub async fn store_processed(&self, message: &Message) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO processed (message_id, body) VALUES (?1, ?2)")
            .bind(message.id)
            .bind(&message.body)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Acknowledges a message: it never comes back. `false` when it was
    /// acknowledged already, by a consumer that received it again after
    /// this one's visibility ran out: then it was processed twice.
    pub async fn acknowledge(&self, id: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE queue SET acked = 1 WHERE id = ?1 AND acked = 0")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A message's receive count and whether it was acknowledged.
    pub async fn state(&self, id: i64) -> Result<(u32, bool), sqlx::Error> {
        sqlx::query_as("SELECT attempts, acked FROM queue WHERE id = ?1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
    }

    /// The processed messages' ids, in order.
    pub async fn processed(&self) -> Result<Vec<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT message_id FROM processed ORDER BY rowid")
            .fetch_all(&self.pool)
            .await
    }
}

/// How the consumer processes.
#[derive(Clone, Copy, Debug)]
pub struct Consumer {
    /// How long a received message stays hidden.
    pub visibility: Duration,
    /// How long processing one message takes (to watch a consumer die
    /// mid-message).
    pub work: Duration,
}

/// Runs the guide's MessageProcessor once: receive → process →
/// acknowledge → then "completed", which asserts the outcome as the guide
/// does: nothing was waiting, or the message was processed and this
/// consumer's acknowledgement is the one that took (a message acknowledged
/// first by another consumer, after this one's visibility ran out, fails
/// it). `Ok(None)` when the queue had nothing visible. The message id
/// travels in the context's metadata (`messageId`).
pub async fn process_one(
    runner: &Runner,
    queue: &Queue,
    consumer: Consumer,
) -> Result<Option<i64>, WorkflowError> {
    let queue = queue.clone();
    runner
        .run_fn("MessageProcessor", move |ctx| async move {
            // The steps are `Fn` closures returning `async move` futures,
            // which cannot move the context out of the closure: a reference
            // copies in.
            let ctx = &ctx;
            Workflow::given(ctx, "message queue", move || queue)
                .try_when_async("receive message", move |queue| async move {
                    let message = queue.receive(consumer.visibility).await?;
                    if let Some(m) = &message {
                        ctx.set_metadata("messageId", m.id);
                    }
                    Ok::<_, sqlx::Error>((queue, message))
                })
                .try_when_async("process message", |(queue, message)| async move {
                    let Some(message) = message else {
                        return Ok((queue, false));
                    };
                    tokio::time::sleep(consumer.work).await;
                    if message.body.contains("poison") {
                        return Err(StepError::new(Poison(message.id)));
                    }
                    queue
                        .store_processed(&message)
                        .await
                        .map_err(StepError::new)?;
                    Ok((queue, true))
                })
                .try_when_async("acknowledge", move |(queue, processed)| async move {
                    if !processed {
                        return Ok(true);
                    }
                    let id = ctx
                        .try_metadata::<i64>("messageId")
                        .map_err(StepError::new)?;
                    queue.acknowledge(id).await.map_err(StepError::new)
                })
                .then("completed", |&success| success)
                .await
                .map(|_| ctx.metadata::<i64>("messageId"))
        })
        .await
}
