//! One function per subcommand: open the config and the store, call the stages, print.
//!
//! This is the only module that prints to stdout (tables, JSON lines, the listening line), and
//! the only one that knows comfy-table.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, UNIX_EPOCH};

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::json;

use crate::Error;
use crate::cli::{Cli, Command};
use crate::config::{self, Config, ConfigErrors};
use crate::github::{self, ContentType, Normalized};
use crate::server::{self, Intake};
use crate::signature::{self, Secret};
use crate::store::{DeliveryRow, Store, Writer};
use crate::worker::{Wakeup, Worker};

/// Secrets shorter than this are easy to guess; GitHub suggests a long random string.
const SECRET_MIN_LEN: usize = 16;

/// Runs the subcommand `cli` names.
pub fn run(cli: Cli) -> Result<(), Error> {
    let load = || -> Result<Config, Error> {
        let mut config = config::load(cli.config.as_deref())?;
        if let Some(db) = &cli.db {
            config.storage.path = db.clone();
        }
        Ok(config)
    };
    match &cli.command {
        Command::Serve { listen } => {
            let mut config = load()?;
            if let Some(listen) = listen {
                config.server.listen = *listen;
            }
            serve(config)
        }
        Command::Sign { file, secret_env } => {
            sign(&load()?, file.as_deref(), secret_env.as_deref())
        }
        // A preview needs no config: it shows the message whatever the routes say.
        Command::Render { event, file } => render(event.as_deref(), file),
        Command::Deliveries { json, limit } => deliveries(&load()?, *json, *limit),
    }
}

/// `notifier serve`: checks everything it can before opening the port, then receives webhooks
/// until SIGINT or SIGTERM.
fn serve(config: Config) -> Result<(), Error> {
    let relay = Relay::start(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("notifier-http")
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(config.server.listen))
        .map_err(|e| format!("listening on {}: {e}", config.server.listen))?;
    let addr = listener.local_addr().map_err(|e| format!("reading the bound address: {e}"))?;
    println!("listening on http://{addr}{}", config.server.path);
    tracing::info!(config = %config.origin, db = %config.storage.path.display(), "serving");
    runtime.block_on(server::run(listener, relay.intake(), shutdown_signal()));
    drop(runtime);
    relay.stop();
    tracing::info!("stopped");
    Ok(())
}

/// The parts of `serve` behind the HTTP listener: the writer thread the receiver stores through,
/// and the worker thread. Started before any port is opened, so that every config and storage
/// problem is reported first.
pub struct Relay {
    intake: Arc<Intake>,
    wakeup: Arc<Wakeup>,
    writer_thread: JoinHandle<()>,
    worker_thread: JoinHandle<()>,
}

impl Relay {
    /// Resolves secrets and channel URLs (reporting every problem), opens the database, and
    /// starts the writer and worker threads.
    pub fn start(config: &Config) -> Result<Relay, Error> {
        let (secrets, targets) = match (config.secrets(), config.channel_targets()) {
            (Ok(secrets), Ok(targets)) => (secrets, targets),
            (secrets, targets) => {
                let mut errors = secrets.err().map(|e| e.0).unwrap_or_default();
                errors.extend(targets.err().map(|e| e.0).unwrap_or_default());
                return Err(Box::new(ConfigErrors(errors)));
            }
        };
        warn_about_weak_secrets(&secrets);
        let db = &config.storage.path;
        let timeout = config.storage.busy_timeout;
        let writer_store = open_store_with_timeout(db, timeout)?;
        let worker_store = open_store_with_timeout(db, timeout)?;

        let wakeup = Arc::new(Wakeup::default());
        let on_stored = {
            let wakeup = Arc::clone(&wakeup);
            move || wakeup.notify()
        };
        let (writer, writer_thread) = Writer::spawn(writer_store, on_stored)
            .map_err(|e| format!("starting the writer thread: {e}"))?;
        let worker = Worker {
            store: worker_store,
            routes: config.routes.clone(),
            targets,
            settings: config.worker.clone(),
        };
        let worker_thread = worker
            .spawn(Arc::clone(&wakeup))
            .map_err(|e| format!("starting the worker thread: {e}"))?;
        let intake = Arc::new(Intake {
            path: config.server.path.clone(),
            secrets,
            max_body_bytes: config.server.max_body_bytes,
            writer,
        });
        Ok(Relay { intake, wakeup, writer_thread, worker_thread })
    }

    /// What the HTTP server hands each webhook to.
    pub fn intake(&self) -> Arc<Intake> {
        Arc::clone(&self.intake)
    }

    /// Waits for the writer to answer what it holds and the worker to finish its current
    /// delivery. Call once the server has stopped and dropped its intakes.
    pub fn stop(self) {
        // With the last Intake gone, the writer's channel closes and its thread ends.
        drop(self.intake);
        self.wakeup.stop();
        let _ = self.writer_thread.join();
        let _ = self.worker_thread.join();
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down: no new connections; finishing requests in flight");
}

fn warn_about_weak_secrets(secrets: &[Secret]) {
    for (i, secret) in secrets.iter().enumerate() {
        let bytes = secret.as_bytes();
        if bytes.len() < SECRET_MIN_LEN {
            tracing::warn!(
                secret = i + 1,
                "webhook secret is shorter than {SECRET_MIN_LEN} bytes; use a long random string"
            );
        }
        if bytes.first().is_some_and(u8::is_ascii_whitespace)
            || bytes.last().is_some_and(u8::is_ascii_whitespace)
        {
            tracing::warn!(
                secret = i + 1,
                "webhook secret starts or ends with whitespace; GitHub signs with the secret exactly as entered"
            );
        }
    }
}

fn open_store(path: &Path) -> Result<Store, Error> {
    open_store_with_timeout(path, crate::store::DEFAULT_BUSY_TIMEOUT)
}

fn open_store_with_timeout(path: &Path, busy_timeout: Duration) -> Result<Store, Error> {
    Store::open_with_timeout(path, busy_timeout)
        .map_err(|e| format!("opening database {}: {e}", path.display()).into())
}

/// `notifier sign`: prints `sha256=<hex>` for a payload.
fn sign(config: &Config, file: Option<&Path>, secret_env: Option<&str>) -> Result<(), Error> {
    let secret = match secret_env {
        Some(var) => match std::env::var_os(var) {
            Some(value) if !value.is_empty() => Secret::new(value.into_encoded_bytes()),
            _ => {
                return Err(format!("the environment variable {var} is not set (or empty)").into());
            }
        },
        None => config.secrets()?.into_iter().next().ok_or("no webhook secret is configured")?,
    };
    let mut payload = Vec::new();
    match file {
        Some(path) => {
            payload =
                std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        }
        None => {
            std::io::stdin()
                .read_to_end(&mut payload)
                .map_err(|e| format!("reading standard input: {e}"))?;
        }
    }
    println!("{}", signature::sign(&secret, &payload));
    Ok(())
}

/// `notifier render`: the Slack JSON a payload would produce, or why it would be skipped.
fn render(event: Option<&str>, file: &Path) -> Result<(), Error> {
    let event = match event {
        Some(event) => event.to_string(),
        None => file
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.split('.').next())
            .filter(|name| !name.is_empty())
            .ok_or_else(|| {
                format!("can't tell the event from {}; pass --event EVENT", file.display())
            })?
            .to_string(),
    };
    let body = std::fs::read(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    let parsed = github::normalize(&event, ContentType::Json, &body)
        .map_err(|e| format!("reading {} as a {event} payload: {e}", file.display()))?;
    let mut out = std::io::stdout().lock();
    match parsed.normalized {
        Normalized::Event(event) => {
            writeln!(out, "{:#}", crate::render::message(&event).to_json())?;
        }
        Normalized::Skip(reason) => writeln!(out, "skipped: {reason}")?,
    }
    Ok(())
}

/// `notifier deliveries`: the delivery log, newest first.
fn deliveries(config: &Config, as_json: bool, limit: usize) -> Result<(), Error> {
    let path = &config.storage.path;
    if !path.exists() {
        return Err(format!(
            "no database at {}; start `notifier serve` first, or pass --db with the file serve uses",
            path.display()
        )
        .into());
    }
    let rows = open_store(path)?
        .list(limit)
        .map_err(|e| format!("reading deliveries from {}: {e}", path.display()))?;
    let mut out = std::io::stdout().lock();
    if as_json {
        for row in &rows {
            writeln!(out, "{}", delivery_json(row))?;
        }
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "No deliveries yet in {}.", path.display())?;
        return Ok(());
    }
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["Delivery", "Received (UTC)", "Event", "Repository", "Status", "Detail"]);
    for row in &rows {
        table.add_row([
            row.id.clone(),
            timestamp(row.received_at_ms),
            event_action(row),
            row.repo.clone().unwrap_or_default(),
            row.status.to_string(),
            detail(row),
        ]);
    }
    writeln!(out, "{table}")?;
    Ok(())
}

fn event_action(row: &DeliveryRow) -> String {
    match &row.action {
        Some(action) => format!("{}.{action}", row.event),
        None => row.event.clone(),
    }
}

/// Where it went, or why not.
fn detail(row: &DeliveryRow) -> String {
    let mut parts: Vec<String> =
        row.sends.iter().map(|(route, channel)| format!("→ {channel} (route {route})")).collect();
    if let Some(reason) = &row.reason {
        parts.push(reason.clone());
    }
    if let Some(note) = &row.note {
        parts.push(note.clone());
    }
    if row.attempts > 1 {
        parts.push(format!("{} attempts", row.attempts));
    }
    parts.join("; ")
}

fn delivery_json(row: &DeliveryRow) -> serde_json::Value {
    json!({
        "id": row.id,
        "event": row.event,
        "action": row.action,
        "repo": row.repo,
        "status": row.status.as_str(),
        "reason": row.reason,
        "note": row.note,
        "hook_id": row.hook_id,
        "attempts": row.attempts,
        "received_at": timestamp(row.received_at_ms),
        "finished_at": row.finished_at_ms.map(timestamp),
        "sends": row.sends.iter().map(|(route, channel)| json!({ "route": route, "channel": channel })).collect::<Vec<_>>(),
    })
}

fn timestamp(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}
