//! The guide's message processing over a durable queue: a SQLite table with
//! a visibility timeout. A received message is hidden for the timeout; a
//! message whose processing fails (or whose consumer dies) is not
//! acknowledged and comes back, until it has been delivered as many times
//! as the consumer allows: then it goes to the dead-letter table with its
//! last error instead of coming back forever.

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

/// A message that was delivered as many times as allowed and never
/// processed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message's id.
    pub id: i64,
    /// Its body.
    pub body: String,
    /// How many times it was delivered.
    pub deliveries: u32,
    /// The last error its processing recorded.
    pub error: Option<String>,
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
             CREATE TABLE IF NOT EXISTS processed (message_id INTEGER NOT NULL, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS dead_letters (
                 message_id INTEGER PRIMARY KEY, body TEXT NOT NULL,
                 deliveries INTEGER NOT NULL, error TEXT, dead_at INTEGER NOT NULL);",
        )
        .execute(&pool)
        .await?;
        // Files made before the dead-letter queue lack its columns.
        for column in ["last_error TEXT", "dead INTEGER NOT NULL DEFAULT 0"] {
            crate::db::add_column(&pool, "queue", column).await?;
        }
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

    /// Takes the next visible message and hides it for `visibility`. A
    /// message delivered `max_deliveries` times already, and back again
    /// (never acknowledged), goes to the dead-letter table instead, with
    /// the last error its processing recorded; the next one is taken.
    pub async fn receive(
        &self,
        visibility: Duration,
        max_deliveries: u32,
    ) -> Result<Option<Message>, sqlx::Error> {
        // Within this process the pool's one connection already serializes
        // receivers, so a plain `begin()` would do. IMMEDIATE is for
        // consumers in other processes on the same file (the example runs
        // as several): it takes the write lock before the SELECT, so a
        // second consumer waits out the busy timeout. A deferred transaction
        // would read first and then fail with SQLITE_BUSY on upgrading to
        // write, which the busy timeout cannot retry.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = now_ms();
        let message = loop {
            let next = sqlx::query_as::<_, (i64, String, u32)>(
                "SELECT id, body, attempts FROM queue
                 WHERE acked = 0 AND dead = 0 AND visible_at <= ?1 ORDER BY id LIMIT 1",
            )
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((id, body, attempts)) = next else {
                break None;
            };
            // At least one delivery, whatever the consumer asked.
            if attempts < max_deliveries.max(1) {
                break Some(Message {
                    id,
                    body,
                    attempts: attempts + 1,
                });
            }
            sqlx::query(
                "INSERT INTO dead_letters (message_id, body, deliveries, error, dead_at)
                 SELECT id, body, attempts, last_error, ?2 FROM queue WHERE id = ?1",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE queue SET dead = 1 WHERE id = ?1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tracing::warn!(message = id, deliveries = attempts, "message dead-lettered");
        };
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

    /// Notes why processing message `id` failed: a dead letter keeps it.
    pub async fn record_failure(&self, id: i64, error: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE queue SET last_error = ?2 WHERE id = ?1")
            .bind(id)
            .bind(error)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The dead letters: message id, body, deliveries and last error, in
    /// the order they died.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, sqlx::Error> {
        let rows: Vec<(i64, String, u32, Option<String>)> = sqlx::query_as(
            "SELECT message_id, body, deliveries, error FROM dead_letters ORDER BY dead_at, message_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, body, deliveries, error)| DeadLetter {
                id,
                body,
                deliveries,
                error,
            })
            .collect())
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
    /// this one's visibility ran out (then it was processed twice), or
    /// dead-lettered meanwhile.
    pub async fn acknowledge(&self, id: i64) -> Result<bool, sqlx::Error> {
        // A message dead-lettered meanwhile (this consumer ran past its
        // visibility on the last delivery) stays dead: not acknowledged.
        let done =
            sqlx::query("UPDATE queue SET acked = 1 WHERE id = ?1 AND acked = 0 AND dead = 0")
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
    /// How many times a message is delivered before it goes to the
    /// dead-letter table (a poison message stops coming back).
    pub max_deliveries: u32,
}

/// Runs the guide's MessageProcessor once: receive → process →
/// acknowledge → then "completed", which asserts `success` as the guide
/// does. So a run finds the queue empty fails its "completed" assertion,
/// as the guide's does (the runner counts it failed); this function reads
/// that failure, with no message received, as `Ok(None)`. A message
/// acknowledged first by another consumer, after this one's visibility
/// ran out, fails "completed" too, and is an error here. A failed
/// processing records its error on the message, for the dead-letter
/// table. The message id travels in the context's metadata (`messageId`).
pub async fn process_one(
    runner: &Runner,
    queue: &Queue,
    consumer: Consumer,
) -> Result<Option<i64>, WorkflowError> {
    let queue = queue.clone();
    // What the run received, read after it ends however it ended.
    let received = std::sync::Arc::new(std::sync::Mutex::new(None::<i64>));
    let noted = received.clone();
    let ran = runner
        .run_fn("MessageProcessor", move |ctx| async move {
            // The steps are `Fn` closures returning `async move` futures,
            // which cannot move the context out of the closure: a reference
            // copies in.
            let ctx = &ctx;
            let noted = &noted;
            Workflow::given(ctx, "message queue", move || queue)
                .try_when_async("receive message", move |queue| async move {
                    let message = queue
                        .receive(consumer.visibility, consumer.max_deliveries)
                        .await?;
                    if let Some(m) = &message {
                        ctx.set_metadata("messageId", m.id);
                        *noted.lock().unwrap_or_else(|e| e.into_inner()) = Some(m.id);
                    }
                    Ok::<_, sqlx::Error>((queue, message))
                })
                .try_when_async("process message", |(queue, message)| async move {
                    let Some(message) = message else {
                        return Ok((queue, false));
                    };
                    tokio::time::sleep(consumer.work).await;
                    if message.body.contains("poison") {
                        let poison = Poison(message.id);
                        queue
                            .record_failure(message.id, &poison.to_string())
                            .await
                            .map_err(StepError::new)?;
                        return Err(StepError::new(poison));
                    }
                    queue
                        .store_processed(&message)
                        .await
                        .map_err(StepError::new)?;
                    Ok((queue, true))
                })
                .try_when_async("acknowledge", move |(queue, processed)| async move {
                    if !processed {
                        return Ok(false);
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
        .await;
    let received = *received.lock().unwrap_or_else(|e| e.into_inner());
    match ran {
        Err(WorkflowError::Assertion { step })
            if &*step.title == "completed" && received.is_none() =>
        {
            Ok(None)
        }
        ran => ran,
    }
}
