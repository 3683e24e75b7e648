//! `notifier serve`.

use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::open_store_with;
use crate::Error;
use crate::config::{Config, Resolved};
use crate::server::{self, Intake, Limits};
use crate::signature::Secret;
use crate::store::Writer;
use crate::worker::{Wakeup, Worker};

/// Secrets shorter than this are easy to guess; GitHub suggests a long random string.
const SECRET_MIN_LEN: usize = 16;

/// `notifier serve`: checks everything it can before opening the port, then receives webhooks
/// until SIGINT or SIGTERM.
pub(super) fn serve(config: Config) -> Result<(), Error> {
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
/// and the worker's threads. Started before any port is opened, so that every config and
/// storage problem is reported first.
pub struct Relay {
    intake: Arc<Intake>,
    wakeup: Arc<Wakeup>,
    threads: Vec<JoinHandle<()>>,
    /// Held while serving: one `serve` per database.
    _lock: File,
}

impl Relay {
    /// Resolves secrets and channel URLs (reporting every problem), locks and opens the
    /// database, and starts the writer and worker.
    pub fn start(config: &Config) -> Result<Relay, Error> {
        let Resolved { secrets, channels } = config.resolve()?;
        warn_about_weak_secrets(&secrets);
        let db = &config.storage.path;
        let options = config.storage.options();
        let lock = lock_database(db)?;
        let writer_store = open_store_with(db, &options)?;
        let router_store = open_store_with(db, &options)?;
        let mut sender_stores = BTreeMap::new();
        for name in channels.keys() {
            sender_stores.insert(name.clone(), open_store_with(db, &options)?);
        }

        let wakeup = Arc::new(Wakeup::default());
        let on_stored = {
            let wakeup = Arc::clone(&wakeup);
            move || wakeup.notify()
        };
        let (writer, writer_thread) = Writer::spawn(writer_store, on_stored)
            .map_err(|e| format!("starting the writer thread: {e}"))?;
        let worker = Worker {
            store: router_store,
            sender_stores,
            routes: config.routes.clone(),
            channels,
            settings: config.worker.clone(),
        };
        let mut threads = worker
            .spawn(Arc::clone(&wakeup))
            .map_err(|e| format!("starting the worker threads: {e}"))?;
        threads.push(writer_thread);
        let server = &config.server;
        let intake = Arc::new(Intake {
            path: server.path.clone(),
            secrets,
            limits: Limits {
                max_body_bytes: server.max_body_bytes,
                header_timeout: server.header_timeout,
                body_timeout: server.body_timeout,
                max_connections: server.max_connections,
            },
            writer,
        });
        Ok(Relay { intake, wakeup, threads, _lock: lock })
    }

    /// What the HTTP server hands each webhook to.
    pub fn intake(&self) -> Arc<Intake> {
        Arc::clone(&self.intake)
    }

    /// Waits for the writer to answer what it holds and the worker to finish what it is
    /// sending. Call once the server has stopped and dropped its intakes.
    pub fn stop(self) {
        // With the last Intake gone, the writer's channel closes and its thread ends.
        drop(self.intake);
        self.wakeup.stop();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Whether a `serve` holds `db`'s lock right now.
pub(super) fn is_serving(db: &std::path::Path) -> bool {
    let path = PathBuf::from(format!("{}.lock", db.display()));
    match File::open(&path) {
        // A shared lock is refused while serve holds its exclusive one; released at once.
        Ok(file) => matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// Takes an exclusive lock on `DB.lock`, so a second `serve` on the same database fails at once
/// instead of sending every message twice. The lock goes with the process, however it ends.
fn lock_database(db: &std::path::Path) -> Result<File, Error> {
    let path = PathBuf::from(format!("{}.lock", db.display()));
    let file =
        File::create(&path).map_err(|e| format!("creating lock file {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(format!(
            "another notifier serve is using {} (it holds {}); stop it, or pass --db with another file",
            db.display(),
            path.display()
        )
        .into()),
        Err(TryLockError::Error(e)) => Err(format!("locking {}: {e}", path.display()).into()),
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
