//! The SQLite queue and delivery log: open, migrate, enqueue, claim, record, list.
//!
//! One table, `deliveries`, is both the queue and the log: a row is written when a webhook
//! arrives, claimed by the worker, and then carries its outcome for `notifier deliveries`. The
//! `sends` table remembers which routes a delivery was already posted to, so a retry after a
//! partial failure posts only what is missing.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous = FULL`: a commit is on disk when it returns,
//! and the receiver answers 2xx only after its commit. `journal_mode` is read back and checked,
//! since SQLite ignores a pragma it can't apply. A busy timeout well under GitHub's 10-second
//! deadline turns a locked database into an error (and a 503) in time.
//!
//! # Writing from the receiver
//!
//! [`Writer`] owns a connection on its own thread and commits every delivery waiting in its
//! channel in one transaction, so under load many webhooks share one fsync.
//!
//! # Time
//!
//! Times are Unix milliseconds in INTEGER columns named `*_ms`: retries and leases need
//! sub-second precision so that tests can run with millisecond timings.
//!
//! # Compatibility
//!
//! The schema version is `PRAGMA user_version`; see [`MIGRATIONS`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::github::ContentType;

/// How long a statement waits for a lock before failing, unless configured otherwise. Well under
/// GitHub's 10-second deadline, so a locked database gets a 503 that GitHub sees.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most deliveries the writer commits in one transaction.
const WRITE_BATCH_MAX: usize = 256;

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
///
/// Never reorder or remove an entry: only append. A database written by a newer version has a
/// higher `user_version` and is refused rather than misread.
const MIGRATIONS: &[&str] = &[
    // 1: the queue and delivery log.
    "CREATE TABLE deliveries (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        event TEXT NOT NULL,
        hook_id TEXT,
        content_type TEXT NOT NULL,
        body BLOB NOT NULL,
        received_at_ms INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'processed', 'skipped', 'failed')),
        action TEXT,
        repo TEXT,
        reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at_ms INTEGER NOT NULL,
        lease_until_ms INTEGER NOT NULL DEFAULT 0,
        finished_at_ms INTEGER
    );
    CREATE INDEX deliveries_pending ON deliveries (seq) WHERE status = 'pending';
    CREATE TABLE sends (
        delivery_id TEXT NOT NULL REFERENCES deliveries (id),
        route INTEGER NOT NULL,
        channel TEXT NOT NULL,
        sent_at_ms INTEGER NOT NULL,
        PRIMARY KEY (delivery_id, route, channel)
    );",
    // 2: a note for the log (a ping's zen), and what a processed delivery announced, so that the
    // same announcement from another delivery (watch started beside star created) is skipped.
    "ALTER TABLE deliveries ADD COLUMN note TEXT;
    ALTER TABLE deliveries ADD COLUMN announcement TEXT;
    CREATE INDEX deliveries_announcement ON deliveries (announcement, finished_at_ms)
        WHERE announcement IS NOT NULL;",
];

pub type Result<T> = std::result::Result<T, StoreError>;

/// A storage failure.
#[derive(Debug)]
pub enum StoreError {
    Sqlite(rusqlite::Error),
    /// The database can't be used as it is; the message says why and what to do.
    Unusable(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Sqlite(e) => e.fmt(f),
            StoreError::Unusable(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Sqlite(e) => e.source(),
            StoreError::Unusable(_) => None,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(e)
    }
}

/// A delivery's state; the same words are used in SQL, the CLI and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Queued, or waiting for a retry.
    Pending,
    /// Every routed message was sent.
    Processed,
    /// No route wanted it; the reason is stored.
    Skipped,
    /// Given up; the error is stored.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Processed => "processed",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "processed" => Status::Processed,
            "skipped" => Status::Skipped,
            "failed" => Status::Failed,
            _ => Status::Pending,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A webhook as received, before it is stored.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// `X-GitHub-Delivery`.
    pub id: String,
    /// `X-GitHub-Event`.
    pub event: String,
    /// `X-GitHub-Hook-ID`.
    pub hook_id: Option<String>,
    pub content_type: ContentType,
    /// The raw body, exactly as signed.
    pub body: Vec<u8>,
    pub received_at_ms: i64,
}

/// What [`Store::enqueue`] did with one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Stored,
    /// The same id with the same body was already stored.
    Duplicate,
    /// The same id was already stored with a different body; the first is kept.
    Conflict,
}

/// A delivery the worker has claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub event: String,
    pub content_type: ContentType,
    pub body: Vec<u8>,
    /// Attempts made before this one.
    pub attempts: u32,
    /// `(route, channel)` pairs already posted by an earlier attempt.
    pub sent: Vec<(usize, String)>,
}

/// The outcome of one attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    Skipped {
        reason: String,
    },
    Failed {
        error: String,
    },
    /// Try again at `at_ms`; `error` is kept for the log meanwhile.
    Retry {
        error: String,
        at_ms: i64,
    },
}

/// What one attempt at a delivery found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub action: Option<String>,
    /// The repository's `owner/name`.
    pub repo: Option<String>,
    /// Shown in the delivery log, e.g. a ping's zen.
    pub note: Option<String>,
    /// What a processed delivery announced (see [`Store::announced_by`]).
    pub announcement: Option<String>,
    pub outcome: Outcome,
    /// `(route, channel)` pairs this attempt posted to.
    pub sent: Vec<(usize, String)>,
}

/// One row of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: String,
    pub event: String,
    pub action: Option<String>,
    pub repo: Option<String>,
    pub hook_id: Option<String>,
    pub status: Status,
    /// The skip reason, or the error of a failed (or retrying) delivery.
    pub reason: Option<String>,
    pub attempts: u32,
    pub received_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// Something worth showing, such as a ping's zen.
    pub note: Option<String>,
    /// `route N → channel` for each post made.
    pub sends: Vec<(usize, String)>,
}

/// Owns one connection to the database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`. Fails if the file is not a
    /// database, was written by a newer notifier, or can't be put in WAL mode.
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_with_timeout(path, DEFAULT_BUSY_TIMEOUT)
    }

    /// [`Store::open`], waiting at most `busy_timeout` for a lock held by another connection.
    pub fn open_with_timeout(path: &Path, busy_timeout: Duration) -> Result<Store> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(busy_timeout)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unusable(format!(
                "journal_mode is '{mode}', not 'wal'; keep the database on a local file system"
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrate(&mut conn)?;
        Ok(Store { conn, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores each delivery not already stored, in one transaction. Blocks on the commit.
    pub fn enqueue(&mut self, deliveries: &[NewDelivery]) -> Result<Vec<Enqueued>> {
        let tx = self.conn.transaction()?;
        let mut results = Vec::with_capacity(deliveries.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO deliveries
                     (id, event, hook_id, content_type, body, received_at_ms, next_attempt_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (id) DO NOTHING",
            )?;
            let mut same_body =
                tx.prepare_cached("SELECT body = ?2 FROM deliveries WHERE id = ?1")?;
            for d in deliveries {
                let inserted = insert.execute(params![
                    d.id,
                    d.event,
                    d.hook_id,
                    d.content_type.as_str(),
                    d.body,
                    d.received_at_ms
                ])?;
                results.push(if inserted == 1 {
                    Enqueued::Stored
                } else if same_body.query_row(params![d.id, d.body], |row| row.get(0))? {
                    Enqueued::Duplicate
                } else {
                    Enqueued::Conflict
                });
            }
        }
        tx.commit()?;
        Ok(results)
    }

    /// Claims the oldest pending delivery that is due, leasing it until `now_ms + lease`. A
    /// delivery whose lease ran out (its worker died) is claimed again.
    pub fn claim(&mut self, now_ms: i64, lease: Duration) -> Result<Option<Claimed>> {
        let lease_until = now_ms.saturating_add(lease.as_millis() as i64);
        let tx = self.conn.transaction()?;
        let claimed = tx
            .query_row(
                "UPDATE deliveries SET lease_until_ms = ?2
                 WHERE seq = (
                     SELECT seq FROM deliveries
                     WHERE status = 'pending' AND next_attempt_at_ms <= ?1 AND lease_until_ms <= ?1
                     ORDER BY seq LIMIT 1)
                 RETURNING id, event, content_type, body, attempts",
                params![now_ms, lease_until],
                |row| {
                    let content_type: String = row.get(2)?;
                    Ok(Claimed {
                        id: row.get(0)?,
                        event: row.get(1)?,
                        content_type: ContentType::from_stored(&content_type),
                        body: row.get(3)?,
                        attempts: row.get(4)?,
                        sent: Vec::new(),
                    })
                },
            )
            .optional()?;
        let claimed = match claimed {
            Some(mut c) => {
                c.sent = sends(&tx, &c.id)?;
                Some(c)
            }
            None => None,
        };
        tx.commit()?;
        Ok(claimed)
    }

    /// Records an attempt at `id`: its outcome, the summary read from its payload, and the
    /// routes it posted to. Releases the lease. One transaction.
    pub fn record(&mut self, id: &str, attempt: &Attempt, now_ms: i64) -> Result<()> {
        let (status, reason, next_attempt, finished) = match &attempt.outcome {
            Outcome::Processed => (Status::Processed, None, now_ms, Some(now_ms)),
            Outcome::Skipped { reason } => (Status::Skipped, Some(reason), now_ms, Some(now_ms)),
            Outcome::Failed { error } => (Status::Failed, Some(error), now_ms, Some(now_ms)),
            Outcome::Retry { error, at_ms } => (Status::Pending, Some(error), *at_ms, None),
        };
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE deliveries
             SET status = ?2, reason = ?3, action = ?4, repo = ?5, attempts = attempts + 1,
                 next_attempt_at_ms = ?6, lease_until_ms = 0, finished_at_ms = ?7, note = ?8,
                 announcement = ?9
             WHERE id = ?1",
            params![
                id,
                status.as_str(),
                reason,
                attempt.action,
                attempt.repo,
                next_attempt,
                finished,
                attempt.note,
                // Only what was posted suppresses a later duplicate.
                attempt.announcement.as_deref().filter(|_| status == Status::Processed),
            ],
        )?;
        for (route, channel) in &attempt.sent {
            tx.execute(
                "INSERT OR IGNORE INTO sends (delivery_id, route, channel, sent_at_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, *route as i64, channel, now_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The id of a delivery processed since `since_ms` that made `announcement`, if any.
    pub fn announced_by(&self, announcement: &str, since_ms: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM deliveries
                 WHERE announcement = ?1 AND finished_at_ms >= ?2 AND status = 'processed'
                 ORDER BY finished_at_ms DESC LIMIT 1",
                params![announcement, since_ms],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// A stored delivery's event name, content type and body, by id.
    pub fn payload(&self, id: &str) -> Result<Option<(String, ContentType, Vec<u8>)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT event, content_type, body FROM deliveries WHERE id = ?1",
                [id],
                |row| {
                    let content_type: String = row.get(1)?;
                    Ok((row.get(0)?, ContentType::from_stored(&content_type), row.get(2)?))
                },
            )
            .optional()?)
    }

    /// The newest `limit` deliveries, newest first.
    pub fn list(&self, limit: usize) -> Result<Vec<DeliveryRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, event, action, repo, hook_id, status, reason, attempts,
                    received_at_ms, finished_at_ms, note
             FROM deliveries ORDER BY seq DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |row| {
            let status: String = row.get(5)?;
            Ok(DeliveryRow {
                id: row.get(0)?,
                event: row.get(1)?,
                action: row.get(2)?,
                repo: row.get(3)?,
                hook_id: row.get(4)?,
                status: Status::parse(&status),
                reason: row.get(6)?,
                attempts: row.get(7)?,
                received_at_ms: row.get(8)?,
                finished_at_ms: row.get(9)?,
                note: row.get(10)?,
                sends: Vec::new(),
            })
        })?;
        let mut rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        for row in &mut rows {
            row.sends = sends(&self.conn, &row.id)?;
        }
        Ok(rows)
    }
}

fn sends(conn: &Connection, id: &str) -> Result<Vec<(usize, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT route, channel FROM sends WHERE delivery_id = ?1 ORDER BY route, channel",
    )?;
    let rows = stmt.query_map([id], |row| Ok((row.get::<_, i64>(0)? as usize, row.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Unusable(format!(
            "database schema version {version} is newer than this notifier understands ({}); \
             upgrade notifier",
            MIGRATIONS.len()
        )));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Why the writer could not store a delivery.
#[derive(Debug)]
pub struct WriteError(String);

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storing delivery: {}", self.0)
    }
}

impl std::error::Error for WriteError {}

struct WriteJob {
    delivery: NewDelivery,
    reply: tokio::sync::oneshot::Sender<std::result::Result<Enqueued, WriteError>>,
}

/// The receiver's way into the store: a thread that owns a [`Store`] and commits waiting
/// deliveries in batches. Cheap to clone; the thread ends when the last clone is dropped.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<WriteJob>,
}

impl Writer {
    /// Starts the writer thread. `on_stored` runs after each commit that stored something new.
    pub fn spawn(
        mut store: Store,
        on_stored: impl Fn() + Send + 'static,
    ) -> std::io::Result<(Writer, thread::JoinHandle<()>)> {
        let (jobs, queue) = mpsc::channel::<WriteJob>();
        let handle = thread::Builder::new().name("notifier-writer".into()).spawn(move || {
            while let Ok(first) = queue.recv() {
                let mut batch = vec![first];
                while batch.len() < WRITE_BATCH_MAX {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let deliveries: Vec<NewDelivery> =
                    batch.iter().map(|job| job.delivery.clone()).collect();
                match store.enqueue(&deliveries) {
                    Ok(results) => {
                        if results.contains(&Enqueued::Stored) {
                            on_stored();
                        }
                        for (job, result) in batch.into_iter().zip(results) {
                            // The request may have gone away; its delivery is stored regardless.
                            let _ = job.reply.send(Ok(result));
                        }
                    }
                    Err(e) => {
                        for job in batch {
                            let _ = job.reply.send(Err(WriteError(e.to_string())));
                        }
                    }
                }
            }
        })?;
        Ok((Writer { jobs }, handle))
    }

    /// Stores `delivery`; resolves once it is committed, or failed to be.
    pub async fn enqueue(
        &self,
        delivery: NewDelivery,
    ) -> std::result::Result<Enqueued, WriteError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(WriteJob { delivery, reply })
            .map_err(|_| WriteError("the writer thread has stopped".into()))?;
        answer.await.map_err(|_| WriteError("the writer thread has stopped".into()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: &str, body: &str) -> NewDelivery {
        NewDelivery {
            id: id.into(),
            event: "issues".into(),
            hook_id: Some("42".into()),
            content_type: ContentType::Json,
            body: body.as_bytes().to_vec(),
            received_at_ms: 1_000,
        }
    }

    fn attempt(outcome: Outcome) -> Attempt {
        Attempt {
            action: Some("opened".into()),
            repo: Some("o/r".into()),
            note: None,
            announcement: None,
            outcome,
            sent: vec![],
        }
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("n.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn opens_in_wal_mode_with_full_sync() {
        let (_dir, store) = open();
        let mode: String = store.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        let sync: i64 = store.conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!((mode.as_str(), sync), ("wal", 2));
    }

    #[test]
    fn reopening_does_not_migrate_twice() {
        let (dir, mut store) = open();
        store.enqueue(&[delivery("a", "{}")]).unwrap();
        drop(store);
        let store = Store::open(&dir.path().join("n.db")).unwrap();
        assert_eq!(store.list(10).unwrap().len(), 1);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let (dir, store) = open();
        store.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(store);
        let err = Store::open(&dir.path().join("n.db")).err().unwrap().to_string();
        assert!(err.contains("newer than this notifier understands"), "{err}");
    }

    #[test]
    fn duplicates_and_conflicts_keep_the_first_delivery() {
        let (_dir, mut store) = open();
        let got = store
            .enqueue(&[delivery("a", "{}"), delivery("a", "{}"), delivery("a", "{\"x\":1}")])
            .unwrap();
        assert_eq!(got, vec![Enqueued::Stored, Enqueued::Duplicate, Enqueued::Conflict]);
        assert_eq!(store.list(10).unwrap().len(), 1);
    }

    #[test]
    fn claim_takes_the_oldest_due_delivery_and_leases_it() {
        let (_dir, mut store) = open();
        store.enqueue(&[delivery("a", "{}"), delivery("b", "{}")]).unwrap();
        let lease = Duration::from_secs(30);
        assert_eq!(store.claim(2_000, lease).unwrap().unwrap().id, "a");
        assert_eq!(store.claim(2_000, lease).unwrap().unwrap().id, "b");
        assert!(store.claim(2_000, lease).unwrap().is_none());
        // The first lease runs out: a dead worker's delivery is claimed again.
        assert_eq!(store.claim(32_000, lease).unwrap().unwrap().id, "a");
    }

    #[test]
    fn a_retry_waits_until_its_time_and_remembers_what_was_sent() {
        let (_dir, mut store) = open();
        store.enqueue(&[delivery("a", "{}")]).unwrap();
        let lease = Duration::from_secs(30);
        store.claim(1_000, lease).unwrap().unwrap();
        let retry = Attempt {
            outcome: Outcome::Retry { error: "HTTP 500".into(), at_ms: 5_000 },
            sent: vec![(1, "dev".into())],
            ..attempt(Outcome::Processed)
        };
        store.record("a", &retry, 1_000).unwrap();
        assert!(store.claim(4_999, lease).unwrap().is_none());
        let again = store.claim(5_000, lease).unwrap().unwrap();
        assert_eq!((again.attempts, again.sent), (1, vec![(1, "dev".to_string())]));
    }

    #[test]
    fn record_sets_status_reason_and_summary() {
        let (_dir, mut store) = open();
        store.enqueue(&[delivery("a", "{}"), delivery("b", "{}")]).unwrap();
        let skipped =
            Attempt { action: None, ..attempt(Outcome::Skipped { reason: "ping".into() }) };
        store.record("a", &skipped, 3_000).unwrap();
        store.record("b", &attempt(Outcome::Processed), 3_000).unwrap();
        let rows = store.list(10).unwrap();
        assert_eq!(rows[0].id, "b");
        assert_eq!(
            (rows[0].status, rows[0].action.as_deref()),
            (Status::Processed, Some("opened"))
        );
        assert_eq!((rows[1].status, rows[1].reason.as_deref()), (Status::Skipped, Some("ping")));
        assert_eq!(rows[1].finished_at_ms, Some(3_000));
        assert!(store.claim(4_000, Duration::from_secs(1)).unwrap().is_none());
    }

    #[test]
    fn announcements_are_found_only_when_processed_and_recent() {
        let (_dir, mut store) = open();
        store.enqueue(&[delivery("a", "{}"), delivery("b", "{}")]).unwrap();
        let starred =
            |outcome| Attempt { announcement: Some("starred o/r by u".into()), ..attempt(outcome) };
        store.record("a", &starred(Outcome::Failed { error: "x".into() }), 1_000).unwrap();
        assert_eq!(store.announced_by("starred o/r by u", 0).unwrap(), None);
        store.record("b", &starred(Outcome::Processed), 2_000).unwrap();
        assert_eq!(store.announced_by("starred o/r by u", 1_500).unwrap().as_deref(), Some("b"));
        assert_eq!(store.announced_by("starred o/r by u", 2_001).unwrap(), None);
        assert_eq!(store.announced_by("starred o/r by v", 0).unwrap(), None);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        assert!(Store::open(&path).is_err());
    }
}
