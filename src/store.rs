//! The SQLite queue, outbox and delivery log.
//!
//! `deliveries` is both the queue and the log: a row is written when a webhook arrives, claimed
//! by the router (see [`crate::worker`]), and carries its outcome for `notifier deliveries`.
//! When a delivery is routed to channels, one `outbox` row per channel holds the rendered
//! message; each channel's sender claims its own rows, so one channel's trouble never holds up
//! another's. A delivery is `processed` once every outbox row is sent, `failed` once none is
//! pending and one failed, and `pending` until then.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous = FULL`: a commit is on disk when it returns,
//! and the receiver answers 2xx only after its commit. `journal_mode` is read back and checked,
//! since SQLite ignores a pragma it can't apply. A busy timeout well under GitHub's 10-second
//! deadline turns a locked database into an error (and a 503) in time.
//!
//! # Claims
//!
//! `serve` holds an exclusive lock on the database (`DB.lock`, see `commands::serve`), so its
//! router is the only one claiming deliveries and each of its senders the only one claiming its
//! channel's messages. A claim is therefore a plain read and takes no write lock, and what a
//! killed process was working on is simply still `pending` when `serve` starts again. (So the
//! `lease_until_ms` columns, and `deliveries.next_attempt_at_ms`, which schema 1 used for retries
//! of whole deliveries before retries moved to the outbox, are no longer read.)
//!
//! # Writing from the receiver
//!
//! [`Writer`] owns a connection on its own thread and commits every delivery waiting in its
//! channel in one transaction, so under load many webhooks share one fsync.
//!
//! # Time
//!
//! Times are Unix milliseconds in INTEGER columns named `*_ms`: retries need
//! sub-second precision so that tests can run with millisecond timings.
//!
//! # Compatibility
//!
//! The schema version is `PRAGMA user_version`; see `MIGRATIONS`.

use std::fmt;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    // 2: a note for the log (a ping's zen), and what a delivery announced, so that the same
    // announcement from another delivery (watch started beside star created) is skipped.
    "ALTER TABLE deliveries ADD COLUMN note TEXT;
    ALTER TABLE deliveries ADD COLUMN announcement TEXT;
    CREATE INDEX deliveries_announcement ON deliveries (announcement, finished_at_ms)
        WHERE announcement IS NOT NULL;",
    // 3: the outbox, one row per message to post, replacing `sends`; each channel's sender
    // claims its own rows. A delivery with `routed_at_ms` set has its outbox rows.
    "CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        delivery_id TEXT NOT NULL REFERENCES deliveries (id),
        route INTEGER NOT NULL,
        channel TEXT NOT NULL,
        message TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at_ms INTEGER NOT NULL,
        lease_until_ms INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        created_at_ms INTEGER NOT NULL,
        sent_at_ms INTEGER,
        UNIQUE (delivery_id, route, channel)
    );
    CREATE INDEX outbox_pending ON outbox (channel, id) WHERE status = 'pending';
    INSERT INTO outbox (delivery_id, route, channel, message, status, next_attempt_at_ms,
                        created_at_ms, sent_at_ms)
        SELECT delivery_id, route, channel, '', 'sent', sent_at_ms, sent_at_ms, sent_at_ms
        FROM sends;
    DROP TABLE sends;
    ALTER TABLE deliveries ADD COLUMN routed_at_ms INTEGER;
    UPDATE deliveries SET routed_at_ms = finished_at_ms WHERE status != 'pending';
    DROP INDEX deliveries_announcement;
    CREATE INDEX deliveries_announcement ON deliveries (announcement, routed_at_ms)
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

impl StoreError {
    /// Whether the database is full (its disk, or the configured `max_bytes`).
    pub fn is_full(&self) -> bool {
        matches!(self, StoreError::Sqlite(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull))
    }
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
    /// Queued, being posted, or waiting for a retry.
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

/// The current time as stored: Unix milliseconds. Only the server and worker loops and the
/// commands read the clock; everything below them takes `now_ms` as a parameter.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a statement waits for a lock held by another connection.
    pub busy_timeout: Duration,
    /// Refuse writes that would grow the file past this size (`PRAGMA max_page_count`).
    pub max_bytes: Option<u64>,
}

impl Default for Options {
    fn default() -> Options {
        Options { busy_timeout: DEFAULT_BUSY_TIMEOUT, max_bytes: None }
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

/// A delivery the router has claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub event: String,
    pub content_type: ContentType,
    pub body: Vec<u8>,
}

/// What the router found in a delivery's payload, for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub action: Option<String>,
    /// The repository's `owner/name`.
    pub repo: Option<String>,
    /// Shown in the delivery log, e.g. a ping's zen.
    pub note: Option<String>,
}

/// What the router decided for a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    /// Post these messages; the delivery stays `pending` until they are sent.
    Post {
        /// What the delivery announces (see [`Store::announced_by`]).
        announcement: Option<String>,
        posts: Vec<NewPost>,
    },
    Skipped {
        reason: String,
    },
    Failed {
        error: String,
    },
}

/// A message to post to one channel, for one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPost {
    pub route: usize,
    pub channel: String,
    /// The JSON body to POST.
    pub message: String,
}

/// An outbox row a channel's sender has claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    pub id: i64,
    pub delivery_id: String,
    pub message: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub created_at_ms: i64,
}

/// The outcome of one attempt to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
    Sent,
    /// Try again at `at_ms`; the error is shown meanwhile.
    Retry {
        error: String,
        at_ms: i64,
    },
    Failed {
        error: String,
    },
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
    /// The most attempts any of its posts took.
    pub attempts: u32,
    pub received_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// Something worth showing, such as a ping's zen.
    pub note: Option<String>,
    /// `(route, channel)` of each message sent.
    pub sends: Vec<(usize, String)>,
}

/// Owns one connection to the database.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`. Fails if the file is not a
    /// database, was written by a newer notifier, or can't be put in WAL mode.
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_with(path, &Options::default())
    }

    /// [`Store::open`] with options.
    pub fn open_with(path: &Path, options: &Options) -> Result<Store> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(options.busy_timeout)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unusable(format!(
                "journal_mode is '{mode}', not 'wal'; keep the database on a local file system"
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrate(&mut conn)?;
        if let Some(max_bytes) = options.max_bytes {
            let page_size: u64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
            conn.pragma_update(None, "max_page_count", (max_bytes / page_size).max(1))?;
        }
        Ok(Store { conn })
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

    /// The oldest delivery waiting to be routed. Only the one router may call this (see
    /// "Claims" above).
    pub fn claim(&self) -> Result<Option<Claimed>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, event, content_type, body FROM deliveries
                 WHERE status = 'pending' AND routed_at_ms IS NULL
                 ORDER BY seq LIMIT 1",
                [],
                |row| {
                    let content_type: String = row.get(2)?;
                    Ok(Claimed {
                        id: row.get(0)?,
                        event: row.get(1)?,
                        content_type: ContentType::from_stored(&content_type),
                        body: row.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records what the router decided for `id`, queueing its posts, in one transaction.
    pub fn route(
        &mut self,
        id: &str,
        summary: &Summary,
        routing: &Routing,
        now_ms: i64,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        let (status, reason, announcement, finished) = match routing {
            Routing::Post { announcement, .. } => {
                (Status::Pending, None, announcement.as_deref(), None)
            }
            Routing::Skipped { reason } => {
                (Status::Skipped, Some(reason.as_str()), None, Some(now_ms))
            }
            Routing::Failed { error } => (Status::Failed, Some(error.as_str()), None, Some(now_ms)),
        };
        tx.execute(
            "UPDATE deliveries
             SET status = ?2, reason = ?3, action = ?4, repo = ?5, note = ?6, announcement = ?7,
                 routed_at_ms = ?8, finished_at_ms = ?9
             WHERE id = ?1",
            params![
                id,
                status.as_str(),
                reason,
                summary.action,
                summary.repo,
                summary.note,
                announcement,
                now_ms,
                finished
            ],
        )?;
        if let Routing::Post { posts, .. } = routing {
            let mut insert = tx.prepare_cached(
                "INSERT INTO outbox (delivery_id, route, channel, message, next_attempt_at_ms,
                                     created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (delivery_id, route, channel) DO NOTHING",
            )?;
            for post in posts {
                insert.execute(params![
                    id,
                    post.route as i64,
                    post.channel,
                    post.message,
                    now_ms
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The id of a delivery routed to post since `since_ms` that made `announcement`, if any
    /// (and whose posts have not failed).
    pub fn announced_by(&self, announcement: &str, since_ms: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM deliveries
                 WHERE announcement = ?1 AND routed_at_ms >= ?2
                     AND status IN ('pending', 'processed')
                 ORDER BY routed_at_ms DESC LIMIT 1",
                params![announcement, since_ms],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// The oldest message for `channel` due at `now_ms`. Only that channel's one sender may call
    /// this (see "Claims" above).
    pub fn claim_post(&self, channel: &str, now_ms: i64) -> Result<Option<Post>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, delivery_id, message, attempts, created_at_ms FROM outbox
                 WHERE channel = ?1 AND status = 'pending' AND next_attempt_at_ms <= ?2
                 ORDER BY id LIMIT 1",
                params![channel, now_ms],
                |row| {
                    Ok(Post {
                        id: row.get(0)?,
                        delivery_id: row.get(1)?,
                        message: row.get(2)?,
                        attempts: row.get(3)?,
                        created_at_ms: row.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// When `channel`'s next message is due, if it has one waiting (for a sender to sleep until).
    pub fn next_post_due(&self, channel: &str) -> Result<Option<i64>> {
        Ok(self.conn.query_row(
            "SELECT min(next_attempt_at_ms) FROM outbox
             WHERE channel = ?1 AND status = 'pending'",
            [channel],
            |row| row.get(0),
        )?)
    }

    /// Records an attempt to post, and settles its delivery: `processed` when all its messages
    /// are sent, `failed` when none is pending and one failed. One transaction. Returns the
    /// delivery's status afterwards.
    pub fn record_post(
        &mut self,
        post: &Post,
        outcome: &PostOutcome,
        now_ms: i64,
    ) -> Result<Status> {
        let tx = self.conn.transaction()?;
        let (status, error, next_attempt, sent_at) = match outcome {
            PostOutcome::Sent => ("sent", None, now_ms, Some(now_ms)),
            PostOutcome::Retry { error, at_ms } => ("pending", Some(error.as_str()), *at_ms, None),
            PostOutcome::Failed { error } => ("failed", Some(error.as_str()), now_ms, None),
        };
        tx.execute(
            "UPDATE outbox
             SET status = ?2, error = ?3, next_attempt_at_ms = ?4, sent_at_ms = ?5,
                 attempts = attempts + 1
             WHERE id = ?1",
            params![post.id, status, error, next_attempt, sent_at],
        )?;
        let (pending, failed, attempts, errors): (i64, i64, u32, Option<String>) = tx.query_row(
            "SELECT count(*) FILTER (WHERE status = 'pending'),
                    count(*) FILTER (WHERE status = 'failed'),
                    max(attempts),
                    group_concat('channel ' || channel || ': ' || error, '; ')
             FROM outbox WHERE delivery_id = ?1",
            [&post.delivery_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )?;
        let settled = match (pending, failed) {
            (0, 0) => Status::Processed,
            (0, _) => Status::Failed,
            _ => Status::Pending,
        };
        tx.execute(
            "UPDATE deliveries SET status = ?2, reason = ?3, attempts = ?4, finished_at_ms = ?5
             WHERE id = ?1",
            params![
                post.delivery_id,
                settled.as_str(),
                errors,
                attempts,
                (settled != Status::Pending).then_some(now_ms)
            ],
        )?;
        tx.commit()?;
        Ok(settled)
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

    /// The newest `limit` deliveries matching `filter`, newest first.
    pub fn list(&self, filter: &Filter, limit: usize) -> Result<Vec<DeliveryRow>> {
        const COLUMNS: &str = "id, event, action, repo, hook_id, status, reason, attempts, \
                               received_at_ms, finished_at_ms, note";
        let map = |row: &rusqlite::Row| -> rusqlite::Result<DeliveryRow> {
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
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM deliveries
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR event = ?2)
                 AND (?3 IS NULL OR received_at_ms >= ?3) AND (?4 IS NULL OR id = ?4)
             ORDER BY seq DESC LIMIT ?5"
        ))?;
        let status = filter.status.map(Status::as_str);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = Vec::new();
        if filter.ids.is_empty() {
            let params = params![status, filter.event, filter.since_ms, None::<String>, limit];
            rows = stmt.query_map(params, map)?.collect::<rusqlite::Result<Vec<_>>>()?;
        } else {
            for id in &filter.ids {
                let params = params![status, filter.event, filter.since_ms, id, limit];
                rows.extend(stmt.query_map(params, map)?.collect::<rusqlite::Result<Vec<_>>>()?);
            }
        }
        let mut sends = self.conn.prepare_cached(
            "SELECT route, channel FROM outbox
             WHERE delivery_id = ?1 AND status = 'sent' ORDER BY route, channel",
        )?;
        for row in &mut rows {
            let sent =
                sends.query_map([&row.id], |r| Ok((r.get::<_, i64>(0)? as usize, r.get(1)?)))?;
            row.sends = sent.collect::<rusqlite::Result<_>>()?;
        }
        Ok(rows)
    }

    /// Puts finished deliveries back in the queue to be routed again by today's rules,
    /// forgetting their messages and outcome. A delivery still `pending` is left alone. Returns
    /// how many were requeued. One transaction.
    pub fn requeue(&mut self, ids: &[String]) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let mut requeued = 0;
        {
            let mut reset = tx.prepare_cached(
                "UPDATE deliveries
                 SET status = 'pending', reason = NULL, attempts = 0, finished_at_ms = NULL,
                     routed_at_ms = NULL, announcement = NULL
                 WHERE id = ?1 AND status != 'pending'",
            )?;
            let mut forget = tx.prepare_cached("DELETE FROM outbox WHERE delivery_id = ?1")?;
            for id in ids {
                if reset.execute([id])? == 1 {
                    forget.execute([id])?;
                    requeued += 1;
                }
            }
        }
        tx.commit()?;
        Ok(requeued)
    }
}

/// Which deliveries [`Store::list`] returns; every field set must hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<Status>,
    pub event: Option<String>,
    /// Received at or after this time.
    pub since_ms: Option<i64>,
    /// These ids only (in this order); empty: any.
    pub ids: Vec<String>,
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
pub struct WriteError {
    message: String,
    full: bool,
}

impl WriteError {
    fn stopped() -> WriteError {
        WriteError { message: "the writer thread has stopped".into(), full: false }
    }

    /// Whether the database is full (its disk, or `max_bytes`).
    pub fn is_full(&self) -> bool {
        self.full
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storing delivery: {}", self.message)
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
                // Bodies are moved, not copied: they can be 25 MiB each.
                let (mut deliveries, mut replies) = (Vec::new(), Vec::new());
                for job in
                    std::iter::once(first).chain(std::iter::from_fn(|| queue.try_recv().ok()))
                {
                    deliveries.push(job.delivery);
                    replies.push(job.reply);
                    if deliveries.len() == WRITE_BATCH_MAX {
                        break;
                    }
                }
                match store.enqueue(&deliveries) {
                    Ok(results) => {
                        if results.contains(&Enqueued::Stored) {
                            on_stored();
                        }
                        for (reply, result) in replies.into_iter().zip(results) {
                            // The request may have gone away; its delivery is stored regardless.
                            let _ = reply.send(Ok(result));
                        }
                    }
                    Err(e) => {
                        for reply in replies {
                            let error = WriteError { message: e.to_string(), full: e.is_full() };
                            let _ = reply.send(Err(error));
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
        self.jobs.send(WriteJob { delivery, reply }).map_err(|_| WriteError::stopped())?;
        answer.await.map_err(|_| WriteError::stopped())?
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

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("n.db")).unwrap();
        (dir, store)
    }

    fn summary() -> Summary {
        Summary { action: Some("opened".into()), repo: Some("o/r".into()), note: None }
    }

    fn post(channel: &str) -> NewPost {
        NewPost { route: 1, channel: channel.into(), message: format!("{{\"to\":\"{channel}\"}}") }
    }

    fn routed(posts: Vec<NewPost>) -> Routing {
        Routing::Post { announcement: None, posts }
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
        assert_eq!(store.list(&Filter::default(), 10).unwrap().len(), 1);
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
    fn a_version_2_database_is_migrated_with_its_sends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            for (i, migration) in MIGRATIONS[..2].iter().enumerate() {
                conn.execute_batch(migration).unwrap();
                conn.pragma_update(None, "user_version", i + 1).unwrap();
            }
            let tx = conn.transaction().unwrap();
            tx.execute_batch(
                "INSERT INTO deliveries (id, event, content_type, body, received_at_ms,
                     next_attempt_at_ms, status, finished_at_ms)
                 VALUES ('a', 'issues', 'application/json', x'7b7d', 1, 1, 'processed', 2);
                 INSERT INTO sends VALUES ('a', 1, 'dev', 2);",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let rows = store.list(&Filter::default(), 10).unwrap();
        assert_eq!(
            (rows[0].status, rows[0].sends.clone()),
            (Status::Processed, vec![(1, "dev".to_string())])
        );
    }

    #[test]
    fn duplicates_and_conflicts_keep_the_first_delivery() {
        let (_dir, mut store) = open();
        let got = store
            .enqueue(&[delivery("a", "{}"), delivery("a", "{}"), delivery("a", "{\"x\":1}")])
            .unwrap();
        assert_eq!(got, vec![Enqueued::Stored, Enqueued::Duplicate, Enqueued::Conflict]);
        assert_eq!(store.list(&Filter::default(), 10).unwrap().len(), 1);
    }

    #[test]
    fn claim_takes_the_oldest_unrouted_delivery() {
        let (_dir, mut store) = open();
        store.enqueue(&[delivery("a", "{}"), delivery("b", "{}")]).unwrap();
        assert_eq!(store.claim().unwrap().unwrap().id, "a");
        assert_eq!(store.claim().unwrap().unwrap().id, "a", "until it is routed");
        store.route("a", &summary(), &routed(vec![post("dev")]), 2_000).unwrap();
        assert_eq!(store.claim().unwrap().unwrap().id, "b");
        store.route("b", &summary(), &Routing::Skipped { reason: "ping".into() }, 2_000).unwrap();
        assert!(store.claim().unwrap().is_none());
    }

    #[test]
    fn each_channel_claims_its_own_posts_and_the_delivery_settles_when_all_are_done() {
        let (_dir, mut store) = open();
        store.enqueue(&[delivery("a", "{}")]).unwrap();
        store.route("a", &summary(), &routed(vec![post("dev"), post("ops")]), 1_000).unwrap();
        assert_eq!(store.list(&Filter::default(), 1).unwrap()[0].status, Status::Pending);

        let dev = store.claim_post("dev", 1_000).unwrap().unwrap();
        assert_eq!(dev.message, "{\"to\":\"dev\"}");
        assert_eq!(store.record_post(&dev, &PostOutcome::Sent, 1_100).unwrap(), Status::Pending);
        assert!(store.claim_post("dev", 1_000).unwrap().is_none(), "a sent message is not claimed");

        let ops = store.claim_post("ops", 1_000).unwrap().unwrap();
        let retry = PostOutcome::Retry { error: "Slack answered HTTP 500".into(), at_ms: 5_000 };
        assert_eq!(store.record_post(&ops, &retry, 1_200).unwrap(), Status::Pending);
        assert!(store.claim_post("ops", 4_999).unwrap().is_none());
        assert_eq!(store.next_post_due("ops").unwrap(), Some(5_000));
        let ops = store.claim_post("ops", 5_000).unwrap().unwrap();
        assert_eq!(ops.attempts, 1);
        assert_eq!(store.record_post(&ops, &PostOutcome::Sent, 5_100).unwrap(), Status::Processed);

        let row = &store.list(&Filter::default(), 1).unwrap()[0];
        assert_eq!(row.sends, vec![(1, "dev".to_string()), (1, "ops".to_string())]);
        assert_eq!((row.attempts, row.finished_at_ms), (2, Some(5_100)));
    }

    #[test]
    fn a_failed_post_fails_its_delivery_with_the_channel_named() {
        let (_dir, mut store) = open();
        store.enqueue(&[delivery("a", "{}")]).unwrap();
        store.route("a", &summary(), &routed(vec![post("dev")]), 1_000).unwrap();
        let p = store.claim_post("dev", 1_000).unwrap().unwrap();
        let failed =
            PostOutcome::Failed { error: "Slack answered HTTP 404: channel_not_found".into() };
        assert_eq!(store.record_post(&p, &failed, 1_100).unwrap(), Status::Failed);
        let row = &store.list(&Filter::default(), 1).unwrap()[0];
        assert_eq!(
            row.reason.as_deref(),
            Some("channel dev: Slack answered HTTP 404: channel_not_found")
        );
    }

    #[test]
    fn skips_and_failures_are_recorded_with_their_reason_and_summary() {
        let (_dir, mut store) = open();
        store.enqueue(&[delivery("a", "{}"), delivery("b", "{}")]).unwrap();
        let ping = Summary { action: None, repo: Some("o/r".into()), note: Some("zen: hi".into()) };
        store.route("a", &ping, &Routing::Skipped { reason: "ping".into() }, 3_000).unwrap();
        store
            .route(
                "b",
                &Summary::default(),
                &Routing::Failed { error: "bad payload".into() },
                3_000,
            )
            .unwrap();
        let rows = store.list(&Filter::default(), 10).unwrap();
        assert_eq!(
            (rows[0].status, rows[0].reason.as_deref()),
            (Status::Failed, Some("bad payload"))
        );
        assert_eq!((rows[1].status, rows[1].reason.as_deref()), (Status::Skipped, Some("ping")));
        assert_eq!(
            (rows[1].note.as_deref(), rows[1].finished_at_ms),
            (Some("zen: hi"), Some(3_000))
        );
        assert!(store.claim().unwrap().is_none());
    }

    #[test]
    fn announcements_are_found_while_pending_or_processed_and_recent() {
        let (_dir, mut store) = open();
        store.enqueue(&[delivery("a", "{}"), delivery("b", "{}")]).unwrap();
        let starred =
            |posts| Routing::Post { announcement: Some("starred o/r by u".into()), posts };
        store.route("a", &summary(), &starred(vec![post("dev")]), 2_000).unwrap();
        assert_eq!(store.announced_by("starred o/r by u", 1_500).unwrap().as_deref(), Some("a"));
        assert_eq!(store.announced_by("starred o/r by u", 2_001).unwrap(), None);
        assert_eq!(store.announced_by("starred o/r by v", 0).unwrap(), None);
        let p = store.claim_post("dev", 2_000).unwrap().unwrap();
        store.record_post(&p, &PostOutcome::Failed { error: "x".into() }, 2_100).unwrap();
        assert_eq!(
            store.announced_by("starred o/r by u", 0).unwrap(),
            None,
            "a failed one announced nothing"
        );
    }

    #[test]
    fn list_filters_by_status_event_time_and_id() {
        let (_dir, mut store) = open();
        let mut late = delivery("c", "{}");
        late.received_at_ms = 5_000;
        late.event = "push".into();
        store.enqueue(&[delivery("a", "{}"), delivery("b", "{}"), late]).unwrap();
        store.route("a", &summary(), &Routing::Failed { error: "x".into() }, 2_000).unwrap();
        let ids = |filter: Filter| -> Vec<String> {
            store.list(&filter, 10).unwrap().into_iter().map(|r| r.id).collect()
        };
        assert_eq!(ids(Filter::default()), vec!["c", "b", "a"]);
        assert_eq!(ids(Filter { status: Some(Status::Failed), ..Filter::default() }), vec!["a"]);
        assert_eq!(ids(Filter { event: Some("push".into()), ..Filter::default() }), vec!["c"]);
        assert_eq!(ids(Filter { since_ms: Some(2_000), ..Filter::default() }), vec!["c"]);
        assert_eq!(
            ids(Filter { ids: vec!["b".into(), "zz".into(), "a".into()], ..Filter::default() }),
            vec!["b", "a"]
        );
    }

    #[test]
    fn requeue_resets_finished_deliveries_and_leaves_pending_ones() {
        let (_dir, mut store) = open();
        store.enqueue(&[delivery("a", "{}"), delivery("b", "{}")]).unwrap();
        store.route("a", &summary(), &routed(vec![post("dev")]), 1_000).unwrap();
        let p = store.claim_post("dev", 1_000).unwrap().unwrap();
        store.record_post(&p, &PostOutcome::Failed { error: "HTTP 404".into() }, 1_100).unwrap();
        assert_eq!(store.requeue(&["a".into(), "b".into()]).unwrap(), 1, "b is still pending");
        let row =
            &store.list(&Filter { ids: vec!["a".into()], ..Filter::default() }, 1).unwrap()[0];
        assert_eq!((row.status, row.reason.clone(), row.attempts), (Status::Pending, None, 0));
        assert!(store.claim_post("dev", 9_999).unwrap().is_none(), "its old messages are gone");
        assert_eq!(store.claim().unwrap().unwrap().id, "a", "routed again, oldest first");
    }

    #[test]
    fn a_full_database_is_recognized_as_full() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options { max_bytes: Some(64 * 1024), ..Options::default() };
        let mut store = Store::open_with(&dir.path().join("n.db"), &options).unwrap();
        let big = "x".repeat(8 * 1024);
        let err = (0..100)
            .find_map(|i| store.enqueue(&[delivery(&format!("d{i}"), &big)]).err())
            .expect("a 64 KiB database fills up");
        assert!(err.is_full(), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        assert!(Store::open(&path).is_err());
    }
}
