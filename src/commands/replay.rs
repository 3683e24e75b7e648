//! `notifier replay`: put stored deliveries back in the queue, to be routed, rendered and sent
//! again by today's config.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::deliveries::table;
use super::open_existing_store;
use super::serve::is_serving;
use crate::Error;
use crate::config::Config;
use crate::store::{Filter, Status};

/// How long `--wait` waits at worst: a minute, and two seconds a delivery (paced channels send
/// about one a second).
fn wait_limit(deliveries: usize) -> Duration {
    Duration::from_secs(60 + 2 * deliveries as u64)
}

pub(super) fn replay(
    config: &Config,
    filter: &Filter,
    dry_run: bool,
    wait: bool,
) -> Result<(), Error> {
    let path = &config.storage.path;
    let mut store = open_existing_store(config)?;
    let rows =
        store.list(filter, usize::MAX).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let missing: Vec<&String> =
        filter.ids.iter().filter(|id| !rows.iter().any(|r| &r.id == *id)).collect();
    if !missing.is_empty() {
        let missing: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        return Err(format!("no delivery {} in {}", missing.join(", "), path.display()).into());
    }
    let (pending, chosen): (Vec<_>, Vec<_>) =
        rows.into_iter().partition(|r| r.status == Status::Pending);
    let mut out = std::io::stdout().lock();
    for row in &pending {
        writeln!(out, "{} is still pending: it will be processed without a replay.", row.id)?;
    }
    if chosen.is_empty() {
        writeln!(out, "Nothing to replay.")?;
        return Ok(());
    }
    writeln!(out, "{}", table(&chosen))?;
    if dry_run {
        writeln!(out, "Would replay {} deliveries; run without --dry-run to do it.", chosen.len())?;
        return Ok(());
    }

    let ids: Vec<String> = chosen.iter().map(|r| r.id.clone()).collect();
    let requeued =
        store.requeue(&ids).map_err(|e| format!("requeueing in {}: {e}", path.display()))?;
    let serving = is_serving(path);
    writeln!(out, "Requeued {requeued} deliveries.")?;
    if !serving {
        writeln!(
            out,
            "No notifier serve is running on {}; the next one will process them.",
            path.display()
        )?;
        if wait {
            return Err("--wait needs a running notifier serve on this database".into());
        }
        return Ok(());
    }
    if !wait {
        writeln!(
            out,
            "The running notifier serve will process them; `notifier deliveries` shows how it went."
        )?;
        return Ok(());
    }
    drop(out);
    wait_for_outcome(&store, &ids, path)
}

/// Polls until none of `ids` is pending, with a progress bar on a terminal; prints the outcome.
fn wait_for_outcome(
    store: &crate::store::Store,
    ids: &[String],
    path: &std::path::Path,
) -> Result<(), Error> {
    let bar = ProgressBar::with_draw_target(Some(ids.len() as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} replaying [{bar:30}] {pos}/{len} {msg}")
            .expect("constant template is valid")
            .progress_chars("=> "),
    );
    let filter = Filter { ids: ids.to_vec(), ..Filter::default() };
    let deadline = Instant::now() + wait_limit(ids.len());
    let rows = loop {
        let rows = store
            .list(&filter, usize::MAX)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let done = rows.iter().filter(|r| r.status != Status::Pending).count();
        bar.set_position(done as u64);
        if done == ids.len() {
            break rows;
        }
        if Instant::now() > deadline {
            bar.abandon();
            return Err(format!(
                "{} of {} replayed deliveries are still pending; `notifier deliveries --status pending` shows them",
                ids.len() - done,
                ids.len()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    bar.finish_and_clear();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", table(&rows))?;
    let failed = rows.iter().filter(|r| r.status == Status::Failed).count();
    writeln!(out, "Replayed {}: {} failed.", rows.len(), failed)?;
    if failed > 0 {
        return Err(format!("{failed} replayed deliveries failed again").into());
    }
    Ok(())
}
