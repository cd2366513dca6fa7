//! The guide's message processing over a durable SQLite queue with a
//! visibility timeout: failed or abandoned messages come back.
//!
//! `cargo run --example message_queue -- --help`

use std::path::PathBuf;
use std::time::Duration;

use workflow_runtime::host::Runner;
use workflow_suite::message_queue::{Consumer, Queue, process_one};

const HELP: &str = "message_queue: receive → process → acknowledge, until SIGTERM or ctrl-c

USAGE: cargo run --example message_queue -- [--db PATH] [--enqueue BODY]... [--visibility MS] [--work MS] [--max-deliveries N] [--drain]

  --db PATH          the queue's SQLite file (default queue.db)
  --enqueue BODY     add a message first (repeatable); a body containing \"poison\" always fails
  --visibility MS    how long a received message stays hidden (default 30000)
  --work MS          how long processing one message takes (default 100)
  --max-deliveries N deliveries before a message goes to the dead-letter table (default 5)
  --drain            stop when no message is visible instead of waiting for more
  --help             this text";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut db = PathBuf::from("queue.db");
    let mut enqueue = Vec::new();
    let mut consumer = Consumer {
        visibility: Duration::from_secs(30),
        work: Duration::from_millis(100),
        max_deliveries: 5,
    };
    let mut drain = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{HELP}");
                return Ok(());
            }
            "--db" => db = value()?.into(),
            "--enqueue" => enqueue.push(value()?),
            "--visibility" => consumer.visibility = Duration::from_millis(value()?.parse()?),
            "--work" => consumer.work = Duration::from_millis(value()?.parse()?),
            "--max-deliveries" => consumer.max_deliveries = value()?.parse()?,
            "--drain" => drain = true,
            other => return Err(format!("unknown argument {other:?}; see --help").into()),
        }
    }
    tracing_subscriber::fmt().init();
    let queue = Queue::open(&db).await?;
    for body in &enqueue {
        let id = queue.enqueue(body).await?;
        println!("enqueued message {id}");
    }
    let runner = Runner::builder().build()?;
    let stop = workflow_runtime::host::stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            outcome = process_one(&runner, &queue, consumer) => match outcome {
                Ok(Some(id)) => println!("processed and acknowledged message {id}"),
                Ok(None) if drain => break,
                Ok(None) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(error) => println!("not acknowledged, it will come back: {error}"),
            },
        }
    }
    for dead in queue.dead_letters().await? {
        println!(
            "dead letter: message {} after {} deliveries: {}",
            dead.id,
            dead.deliveries,
            dead.error.unwrap_or_default()
        );
    }
    Ok(())
}
