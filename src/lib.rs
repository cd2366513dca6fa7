//! Integration tests and examples for the workflow crates.
