#![doc = include_str!("../README.md")]
//! (The README above is this package's documentation, so its examples run as
//! doctests and stay true.)

pub mod bank;
pub mod cluster;
pub mod db;
pub mod external_api;
pub mod message_queue;
pub mod multi_tenant;
pub mod order_api;
pub mod orders;
pub mod runs_cli;
pub mod saga;
pub mod transactions;
pub mod worker;
