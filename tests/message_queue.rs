//! The durable queue: a failed message is not acknowledged and comes back;
//! a consumer killed mid-message (a real process, killed) loses nothing.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use workflow_runtime::WorkflowError;
use workflow_runtime::host::Runner;
use workflow_suite::message_queue::{Consumer, DeadLetter, Poison, Queue, process_one};

fn db(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("queue-{name}-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

const QUICK: Consumer = Consumer {
    visibility: Duration::from_millis(200),
    work: Duration::from_millis(1),
    max_deliveries: 3,
};

#[tokio::test]
async fn a_failed_message_is_not_acknowledged_and_comes_back() {
    let queue = Queue::open(&db("poison")).await.unwrap();
    let runner = Runner::builder().build().unwrap();
    let poison = queue.enqueue("poison pill").await.unwrap();
    let good = queue.enqueue("hello").await.unwrap();

    let err = process_one(&runner, &queue, QUICK).await.unwrap_err();
    assert!(
        matches!(&err, WorkflowError::Failed { step, error } if step.title == "process message" && error.downcast_ref::<Poison>().is_some())
    );
    assert_eq!(queue.state(poison).await.unwrap(), (1, false));

    // Hidden for now: the next message goes first.
    assert_eq!(
        process_one(&runner, &queue, QUICK).await.unwrap(),
        Some(good)
    );
    assert_eq!(queue.state(good).await.unwrap(), (1, true));
    assert_eq!(process_one(&runner, &queue, QUICK).await.unwrap(), None);

    // After the visibility timeout it is back.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(process_one(&runner, &queue, QUICK).await.is_err());
    assert_eq!(queue.state(poison).await.unwrap(), (2, false));
    assert_eq!(queue.processed().await.unwrap(), [good]);
}

fn example(name: &str) -> PathBuf {
    // Tests live in target/<profile>/deps; `cargo test` builds the examples
    // next door.
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

#[tokio::test]
async fn a_consumer_killed_mid_message_loses_nothing() {
    let path = db("killed");
    let queue = Queue::open(&path).await.unwrap();
    let id = queue.enqueue("important").await.unwrap();

    let mut consumer = Command::new(example("message_queue"))
        .args([
            "--db",
            path.to_str().unwrap(),
            "--visibility",
            "300",
            "--work",
            "60000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the message_queue example is built by `cargo test`");
    let deadline = Instant::now() + Duration::from_secs(30);
    while queue.state(id).await.unwrap().0 == 0 {
        assert!(
            Instant::now() < deadline,
            "the consumer never received the message"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Mid-message: received, not yet processed. Kill it.
    consumer.kill().unwrap();
    consumer.wait().unwrap();
    assert_eq!(queue.state(id).await.unwrap(), (1, false));
    assert!(queue.processed().await.unwrap().is_empty());

    // Once the visibility timeout passes, another consumer gets it.
    let runner = Runner::builder().build().unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(process_one(&runner, &queue, QUICK).await.unwrap(), Some(id));
    assert_eq!(queue.state(id).await.unwrap(), (2, true));
    assert_eq!(queue.processed().await.unwrap(), [id]);
}

#[tokio::test]
async fn completed_fails_when_another_consumer_acknowledged_first() {
    let queue = Queue::open(&db("twice")).await.unwrap();
    let runner = Runner::builder().build().unwrap();
    let id = queue.enqueue("slow").await.unwrap();
    // The slow consumer's visibility runs out while it works, so a second
    // consumer receives the message, processes it and acknowledges first.
    let slow = Consumer {
        visibility: Duration::from_millis(50),
        work: Duration::from_millis(2_000),
        max_deliveries: 3,
    };
    let slow_run = {
        let (runner, queue) = (runner.clone(), queue.clone());
        tokio::spawn(async move { process_one(&runner, &queue, slow).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(process_one(&runner, &queue, QUICK).await.unwrap(), Some(id));
    let err = slow_run.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, WorkflowError::Assertion { step } if &*step.title == "completed"),
        "{err:?}"
    );
    // Processed twice, which the failed run reports; acknowledged once.
    assert_eq!(queue.processed().await.unwrap(), [id, id]);
    assert_eq!(queue.state(id).await.unwrap(), (2, true));
}

#[tokio::test]
async fn a_poison_message_goes_to_the_dead_letters_after_its_last_delivery() {
    let queue = Queue::open(&db("dead")).await.unwrap();
    let runner = Runner::builder().build().unwrap();
    let poison = queue.enqueue("poison pill").await.unwrap();
    let quick = Consumer {
        visibility: Duration::from_millis(30),
        ..QUICK
    };
    // Three deliveries, each failing and recording why.
    for delivery in 1..=3 {
        let err = process_one(&runner, &queue, quick).await.unwrap_err();
        assert!(
            matches!(&err, WorkflowError::Failed { step, .. } if step.title == "process message")
        );
        assert_eq!(queue.state(poison).await.unwrap(), (delivery, false));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The fourth receive dead-letters it instead, and the next message
    // goes on.
    let good = queue.enqueue("hello").await.unwrap();
    assert_eq!(
        process_one(&runner, &queue, quick).await.unwrap(),
        Some(good)
    );
    assert_eq!(
        queue.dead_letters().await.unwrap(),
        [DeadLetter {
            id: poison,
            body: "poison pill".into(),
            deliveries: 3,
            error: Some(format!("message {poison} cannot be processed")),
        }]
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    // It never comes back, and it was never processed.
    let before = runner.stats();
    assert_eq!(process_one(&runner, &queue, quick).await.unwrap(), None);
    assert_eq!(queue.processed().await.unwrap(), [good]);
    // An empty queue fails the run's "completed" assertion, as the guide's
    // workflow does: the runner counts it failed.
    let after = runner.stats();
    assert_eq!(after.failed, before.failed + 1);
}
