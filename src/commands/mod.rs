//! One function per subcommand, one file each: open the config and the store, call the stages,
//! print.
//!
//! This is the only module that prints to stdout (tables, JSON lines, the listening line), and
//! the only one that knows comfy-table.

mod deliveries;
mod render;
mod replay;
mod rules;
mod serve;
mod sign;

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::Error;
use crate::cli::{Cli, Command, FilterArgs, RulesCommand};
use crate::config::{self, Check, Config, ConfigError, ConfigErrors};
use crate::store::{Filter, Options, Store, now_ms};

pub use serve::Relay;

/// Runs the subcommand `cli` names.
pub fn run(cli: Cli) -> Result<(), Error> {
    let load_checked = |check: Check| -> Result<(Config, Vec<ConfigError>), Error> {
        let (mut config, problems) = config::load_checked(cli.config.as_deref(), check)?;
        if let Some(db) = &cli.db {
            config.storage.path = db.clone();
        }
        Ok((config, problems))
    };
    let load = |check: Check| -> Result<Config, Error> {
        let (config, problems) = load_checked(check)?;
        if problems.is_empty() { Ok(config) } else { Err(Box::new(ConfigErrors(problems))) }
    };
    match &cli.command {
        Command::Serve { listen } => {
            let mut config = load(Check::Everything)?;
            if let Some(listen) = listen {
                config.server.listen = *listen;
            }
            serve::serve(config)
        }
        Command::Sign { file, secret_env } => {
            sign::sign(&load(Check::FileOnly)?, file.as_deref(), secret_env.as_deref())
        }
        // A preview needs no config: it shows the message whatever the routes say.
        Command::Render { event, file } => render::render(event.as_deref(), file),
        Command::Deliveries { filter, json, limit } => {
            let filter = store_filter(filter, Vec::new());
            deliveries::deliveries(&load(Check::FileOnly)?, &filter, *json, *limit)
        }
        Command::Replay { ids, filter, dry_run, wait } => {
            let mut filter = store_filter(filter, ids.clone());
            if ids.is_empty() && filter.status.is_none() {
                filter.status = Some(crate::store::Status::Failed);
            }
            replay::replay(&load(Check::FileOnly)?, &filter, *dry_run, *wait)
        }
        Command::Rules { command: RulesCommand::Check { event, payload, delivery } } => {
            let (config, problems) = load_checked(Check::Everything)?;
            rules::check(
                &config,
                problems,
                event.as_deref(),
                payload.as_deref(),
                delivery.as_deref(),
            )
        }
    }
}

/// Opens the database for a command that only reads or requeues.
fn open_store(path: &Path) -> Result<Store, Error> {
    open_store_with(path, &Options::default())
}

fn open_store_with(path: &Path, options: &Options) -> Result<Store, Error> {
    Store::open_with(path, options)
        .map_err(|e| format!("opening database {}: {e}", path.display()).into())
}

fn store_filter(args: &FilterArgs, ids: Vec<String>) -> Filter {
    Filter {
        status: args.status.map(Into::into),
        event: args.event.clone(),
        since_ms: args.since.map(|ago| now_ms() - ago.as_millis() as i64),
        ids,
    }
}

/// Opens the database that `serve` writes, for a command that reads it; an absent file is an
/// error with the fix, not a new empty database.
fn open_existing_store(config: &Config) -> Result<Store, Error> {
    let path = &config.storage.path;
    if !path.exists() {
        return Err(format!(
            "no database at {}; start `notifier serve` first, or pass --db with the file serve uses",
            path.display()
        )
        .into());
    }
    open_store(path)
}

/// The event name a payload file is named for: `pull_request.opened.json` → `pull_request`.
fn event_from_file_name(file: &Path) -> Result<String, Error> {
    file.file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.split('.').next())
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            format!("can't tell the event from {}; pass --event EVENT", file.display()).into()
        })
}

/// A time for people: RFC 3339 in UTC, to the second.
fn timestamp(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}
