//! The worker thread: claim → normalize → route → render → send → record, one delivery at a time.
//!
//! The database holds the truth; [`Wakeup`] only makes the worker look early. The receiver's
//! writer calls [`Wakeup::notify`] after each commit, so a new delivery is picked up at once, and
//! the worker also polls every `poll_interval`, so it finds rows queued by another process
//! (`notifier replay`) or whose retry time has come.
//!
//! # Retries
//!
//! A retryable send failure (429, 5xx, timeout, network) puts the delivery back to `pending`
//! with a later `next_attempt_at_ms`: exponential backoff from `retry_initial` up to `retry_max`,
//! with jitter, or Slack's `Retry-After` when it is longer. After `max_attempts` the delivery is
//! `failed`. A permanent failure (any other 4xx) fails it at once. Routes already posted by an
//! earlier attempt are not posted again.
//!
//! # Duplicate announcements
//!
//! GitHub sends `watch` started alongside `star` created for one star. Both normalize to the
//! same announcement; the first processed is posted, and the other is skipped with the reason
//! `duplicate: already announced by delivery ID`.
//!
//! # Stopping
//!
//! [`Wakeup::stop`] lets the current delivery finish, then the thread returns.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{RouteConfig, Target, WorkerConfig};
use crate::github::{self, Normalized};
use crate::render::{self, Message};
use crate::rules::{self, Decision};
use crate::slack::{self, SendError};
use crate::store::{Attempt, Claimed, Outcome, Store};

/// How long an announcement (a star) suppresses the same announcement from another delivery.
/// GitHub sends `watch` started within seconds of `star` created; a longer window also keeps
/// star, unstar, star again from announcing twice.
const ANNOUNCEMENT_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Wakes the worker early, or stops it.
#[derive(Default)]
pub struct Wakeup {
    state: Mutex<WakeState>,
    changed: Condvar,
}

#[derive(Default)]
struct WakeState {
    woken: bool,
    stopped: bool,
}

impl Wakeup {
    /// Something new is in the queue.
    pub fn notify(&self) {
        self.state.lock().expect("wakeup lock poisoned").woken = true;
        self.changed.notify_all();
    }

    /// Finish the current delivery and return.
    pub fn stop(&self) {
        self.state.lock().expect("wakeup lock poisoned").stopped = true;
        self.changed.notify_all();
    }

    fn is_stopped(&self) -> bool {
        self.state.lock().expect("wakeup lock poisoned").stopped
    }

    /// Waits until notified, stopped, or `timeout` passes.
    fn wait(&self, timeout: Duration) {
        let state = self.state.lock().expect("wakeup lock poisoned");
        let (mut state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |s| !s.woken && !s.stopped)
            .expect("wakeup lock poisoned");
        state.woken = false;
    }
}

/// What the worker needs from the config.
pub struct Worker {
    pub store: Store,
    pub routes: Vec<RouteConfig>,
    pub targets: BTreeMap<String, Target>,
    pub settings: WorkerConfig,
}

impl Worker {
    /// Starts the worker thread.
    pub fn spawn(self, wakeup: Arc<Wakeup>) -> std::io::Result<thread::JoinHandle<()>> {
        thread::Builder::new().name("notifier-worker".into()).spawn(move || self.run(&wakeup))
    }

    fn run(mut self, wakeup: &Wakeup) {
        let slack = slack::Client::new(self.settings.send_timeout);
        // A claim must outlast the slowest attempt: one timed-out send per channel, and margin.
        let lease =
            self.settings.send_timeout * (self.targets.len() as u32 + 1) + Duration::from_secs(30);
        while !wakeup.is_stopped() {
            match self.store.claim(now_ms(), lease) {
                Ok(Some(delivery)) => self.attempt(&slack, delivery),
                Ok(None) => wakeup.wait(self.settings.poll_interval),
                Err(e) => {
                    tracing::error!(error = %e, "claiming a delivery failed; retrying after the poll interval");
                    wakeup.wait(self.settings.poll_interval);
                }
            }
        }
    }

    fn attempt(&mut self, slack: &slack::Client, delivery: Claimed) {
        let attempt = self.decide(slack, &delivery);
        let (id, event) = (&delivery.id, &delivery.event);
        match &attempt.outcome {
            Outcome::Processed => tracing::info!(delivery = %id, %event, "processed"),
            Outcome::Skipped { reason } => {
                tracing::info!(delivery = %id, %event, %reason, "skipped")
            }
            Outcome::Failed { error } => tracing::warn!(delivery = %id, %event, %error, "failed"),
            Outcome::Retry { error, at_ms } => {
                let retry_in_ms = at_ms - now_ms();
                tracing::warn!(delivery = %id, %event, %error, retry_in_ms, "will retry")
            }
        }
        if let Err(e) = self.store.record(id, &attempt, now_ms()) {
            // The lease runs out and the delivery is attempted again: at worst a duplicate post.
            tracing::error!(delivery = %id, error = %e, "recording the outcome failed");
        }
    }

    /// Normalizes, routes and sends one delivery; says what happened.
    fn decide(&self, slack: &slack::Client, delivery: &Claimed) -> Attempt {
        let parsed = match github::normalize(&delivery.event, delivery.content_type, &delivery.body)
        {
            Ok(parsed) => parsed,
            Err(e) => {
                return Attempt {
                    action: None,
                    repo: None,
                    note: None,
                    announcement: None,
                    outcome: Outcome::Failed { error: e.to_string() },
                    sent: Vec::new(),
                };
            }
        };
        let mut attempt = Attempt {
            action: parsed.action,
            repo: parsed.repo,
            note: parsed.note,
            announcement: None,
            outcome: Outcome::Processed,
            sent: Vec::new(),
        };
        let event = match parsed.normalized {
            Normalized::Event(event) => event,
            Normalized::Skip(reason) => {
                attempt.outcome = Outcome::Skipped { reason };
                return attempt;
            }
        };
        attempt.announcement = event.announcement_key();
        let routes = match rules::route(&event, &self.routes) {
            Decision::Send(routes) => routes,
            Decision::Skip { reason, .. } => {
                attempt.outcome = Outcome::Skipped { reason };
                return attempt;
            }
        };
        if let Some(earlier) = self.announced_earlier(attempt.announcement.as_deref()) {
            let reason = format!("duplicate: already announced by delivery {earlier}");
            attempt.outcome = Outcome::Skipped { reason };
        } else {
            let message = render::message(&event);
            (attempt.outcome, attempt.sent) = self.send_all(slack, delivery, &routes, &message);
        }
        attempt
    }

    /// The delivery that already made `announcement` within [`ANNOUNCEMENT_WINDOW`], if any.
    fn announced_earlier(&self, announcement: Option<&str>) -> Option<String> {
        let since = now_ms() - ANNOUNCEMENT_WINDOW.as_millis() as i64;
        match self.store.announced_by(announcement?, since) {
            Ok(earlier) => earlier,
            Err(e) => {
                // Better a second star message than a lost first one.
                tracing::warn!(error = %e, "looking up earlier announcements failed");
                None
            }
        }
    }

    /// Posts `message` on every route not already posted by an earlier attempt. Returns the
    /// outcome and the routes posted this time.
    fn send_all(
        &self,
        slack: &slack::Client,
        delivery: &Claimed,
        routes: &[rules::RouteMatch],
        message: &Message,
    ) -> (Outcome, Vec<(usize, String)>) {
        let mut sent = Vec::new();
        let mut permanent = Vec::new();
        let mut retryable: Vec<(String, SendError)> = Vec::new();
        for m in routes {
            if delivery
                .sent
                .iter()
                .any(|(route, channel)| *route == m.route && *channel == m.channel)
            {
                continue;
            }
            let result = match self.targets.get(&m.channel) {
                Some(Target::Slack(url)) => slack.send(url, message),
                Some(Target::Console) => {
                    println!("{}: {}", m.channel, message.text);
                    Ok(())
                }
                None => {
                    permanent.push(format!("channel {}: not defined", m.channel));
                    continue;
                }
            };
            match result {
                Ok(()) => sent.push((m.route, m.channel.clone())),
                Err(e) if e.is_retryable() => retryable.push((m.channel.clone(), e)),
                Err(e) => permanent.push(format!("channel {}: {e}", m.channel)),
            }
        }
        let describe = |errors: &[(String, SendError)]| {
            errors.iter().map(|(c, e)| format!("channel {c}: {e}")).collect::<Vec<_>>()
        };
        let outcome = if !permanent.is_empty() {
            permanent.extend(describe(&retryable));
            Outcome::Failed { error: permanent.join("; ") }
        } else if retryable.is_empty() {
            Outcome::Processed
        } else if delivery.attempts + 1 >= self.settings.max_attempts {
            let error = describe(&retryable).join("; ");
            Outcome::Failed {
                error: format!("{error} (gave up after {} attempts)", delivery.attempts + 1),
            }
        } else {
            let asked =
                retryable.iter().filter_map(|(_, e)| e.retry_after()).max().unwrap_or_default();
            let delay = backoff(&self.settings, delivery.attempts, fastrand::f64()).max(asked);
            Outcome::Retry {
                error: describe(&retryable).join("; "),
                at_ms: now_ms() + delay.as_millis() as i64,
            }
        };
        (outcome, sent)
    }
}

/// The delay before retry number `attempts + 1`: `retry_initial · 2^attempts`, capped at
/// `retry_max`, of which the upper half is scaled by `jitter` (0..1) so that retries spread out.
fn backoff(settings: &WorkerConfig, attempts: u32, jitter: f64) -> Duration {
    let full = settings
        .retry_initial
        .saturating_mul(2u32.saturating_pow(attempts.min(31)))
        .min(settings.retry_max);
    full / 2 + (full / 2).mul_f64(jitter.clamp(0.0, 1.0))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WorkerConfig {
        WorkerConfig {
            poll_interval: Duration::from_secs(1),
            max_attempts: 5,
            retry_initial: Duration::from_secs(2),
            retry_max: Duration::from_secs(60),
            send_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let s = settings();
        assert_eq!(backoff(&s, 0, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(&s, 0, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(&s, 3, 1.0), Duration::from_secs(16));
        assert_eq!(backoff(&s, 10, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(&s, 40, 0.0), Duration::from_secs(30));
    }

    #[test]
    fn wakeup_wait_returns_early_when_notified() {
        let wakeup = Arc::new(Wakeup::default());
        let waker = Arc::clone(&wakeup);
        let t = thread::spawn(move || waker.notify());
        let started = std::time::Instant::now();
        wakeup.wait(Duration::from_secs(30));
        t.join().unwrap();
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}
