//! The console's queries and actions from a shell, over the SQLite file or
//! the PostgreSQL database a service journals its runs in:
//!
//! `cargo run --example runs -- list --status failed --db orders.db`
//!
//! `cargo run --example runs -- --help`

use std::io::Write;

fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut out = String::new();
    let done = runtime.block_on(workflow_suite::runs_cli::run(
        std::env::args().skip(1).collect(),
        &mut out,
    ));
    // A reader that went away (`| head`) is no error of ours.
    let _ = std::io::stdout().write_all(out.as_bytes());
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("runs: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
