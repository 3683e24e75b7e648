//! notifier receives GitHub webhooks, queues them in SQLite, and posts Slack messages.
//!
//! Data moves along one line, one module per stage:
//!
//! ```text
//! POST /webhook → server → signature::verify → store.enqueue ══ SQLite (WAL) ══
//!   router:        store.claim → github::normalize → rules::route → render::message → store.route
//!   sender (each): store.claim_post → pace → slack::send → store.record_post
//! ```
//!
//! The receiver answers 2xx only once a delivery is committed to disk; everything after that
//! happens on the worker's threads (a router, and a sender per channel), which can be slow,
//! retry, or crash without losing a webhook.
//! `commands` holds one function per subcommand and is the only place that prints.

pub mod cli;
pub mod commands;
pub mod config;
pub mod event;
pub mod github;
pub mod render;
pub mod rules;
pub mod server;
pub mod signature;
pub mod slack;
pub mod store;
pub mod worker;

/// The error type of commands: any error, with context added on the way up.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
