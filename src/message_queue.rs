//! The guide's message processing over a durable queue: a SQLite table with
//! a visibility timeout. A received message is hidden for the timeout; a
//! message whose processing fails (or whose consumer dies) is not
//! acknowledged and comes back.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
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
    conn: Arc<Mutex<Connection>>,
}

impl Queue {
    /// Opens (or creates) the queue at `db`.
    pub fn open(db: &Path) -> rusqlite::Result<Queue> {
        let conn = Connection::open(db)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS queue (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL,
                 visible_at INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
                 acked INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS processed (message_id INTEGER NOT NULL, body TEXT NOT NULL);",
        )?;
        Ok(Queue {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        f(&mut self.conn.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Adds a message.
    pub fn enqueue(&self, body: &str) -> rusqlite::Result<i64> {
        self.with(|c| {
            c.execute("INSERT INTO queue (body) VALUES (?1)", params![body])?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Takes the next visible message and hides it for `visibility`.
    pub fn receive(&self, visibility: Duration) -> rusqlite::Result<Option<Message>> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = now_ms();
            let message = tx
                .query_row(
                    "SELECT id, body, attempts FROM queue WHERE acked = 0 AND visible_at <= ?1 ORDER BY id LIMIT 1",
                    params![now],
                    |r| {
                        Ok(Message {
                            id: r.get(0)?,
                            body: r.get(1)?,
                            attempts: r.get::<_, u32>(2)? + 1,
                        })
                    },
                )
                .optional()?;
            if let Some(m) = &message {
                tx.execute(
                    "UPDATE queue SET visible_at = ?1, attempts = attempts + 1 WHERE id = ?2",
                    params![now + visibility.as_millis() as i64, m.id],
                )?;
            }
            tx.commit()?;
            Ok(message)
        })
    }

    /// Records the message as processed.
    pub fn store_processed(&self, message: &Message) -> rusqlite::Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO processed (message_id, body) VALUES (?1, ?2)",
                params![message.id, message.body],
            )
            .map(drop)
        })
    }

    /// Acknowledges a message: it never comes back.
    pub fn acknowledge(&self, id: i64) -> rusqlite::Result<()> {
        self.with(|c| {
            c.execute("UPDATE queue SET acked = 1 WHERE id = ?1", params![id])
                .map(drop)
        })
    }

    /// A message's receive count and whether it was acknowledged.
    pub fn state(&self, id: i64) -> rusqlite::Result<(u32, bool)> {
        self.with(|c| {
            c.query_row(
                "SELECT attempts, acked FROM queue WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? != 0)),
            )
        })
    }

    /// The processed messages' ids, in order.
    pub fn processed(&self) -> rusqlite::Result<Vec<i64>> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT message_id FROM processed ORDER BY rowid")?;
            stmt.query_map([], |r| r.get(0))?.collect()
        })
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
/// acknowledge → completed. `Ok(None)` when the queue had nothing visible.
/// The message id travels in the context's metadata (`messageId`).
pub async fn process_one(
    runner: &Runner,
    queue: &Queue,
    consumer: Consumer,
) -> Result<Option<i64>, WorkflowError> {
    let queue = queue.clone();
    runner
        .run_fn("MessageProcessor", move |ctx| async move {
            Workflow::given(&ctx, "message queue", move || queue)
                .try_when("receive message", |queue| {
                    let message = queue.receive(consumer.visibility)?;
                    if let Some(m) = &message {
                        ctx.set_metadata("messageId", m.id);
                    }
                    Ok::<_, rusqlite::Error>((queue, message))
                })
                .try_when_async("process message", |(queue, message)| async move {
                    let Some(message) = message else {
                        return Ok((queue, false));
                    };
                    tokio::time::sleep(consumer.work).await;
                    if message.body.contains("poison") {
                        return Err(StepError::new(Poison(message.id)));
                    }
                    queue.store_processed(&message).map_err(StepError::new)?;
                    Ok((queue, true))
                })
                .try_when("acknowledge", |(queue, processed)| {
                    if processed {
                        let id = ctx
                            .try_metadata::<i64>("messageId")
                            .map_err(StepError::new)?;
                        queue.acknowledge(id).map_err(StepError::new)?;
                    }
                    Ok::<_, StepError>(processed)
                })
                .then("completed", |_| true)
                .await
                .map(|processed| {
                    processed
                        .then(|| ctx.metadata::<i64>("messageId"))
                        .flatten()
                })
        })
        .await
}
