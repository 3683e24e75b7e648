//! `notifier deliveries`.

use std::io::Write;

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::json;

use super::{open_existing_store, timestamp};
use crate::Error;
use crate::config::Config;
use crate::store::{DeliveryRow, Filter};

/// `notifier deliveries`: the delivery log, newest first.
pub(super) fn deliveries(
    config: &Config,
    filter: &Filter,
    as_json: bool,
    limit: usize,
) -> Result<(), Error> {
    let path = &config.storage.path;
    let rows = open_existing_store(config)?
        .list(filter, limit)
        .map_err(|e| format!("reading deliveries from {}: {e}", path.display()))?;
    let mut out = std::io::stdout().lock();
    if as_json {
        for row in &rows {
            writeln!(out, "{}", delivery_json(row))?;
        }
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "No deliveries in {} match.", path.display())?;
        return Ok(());
    }
    writeln!(out, "{}", table(&rows))?;
    Ok(())
}

/// The delivery log as a table, as `deliveries` and `replay` print it.
pub(super) fn table(rows: &[DeliveryRow]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["Delivery", "Received (UTC)", "Event", "Repository", "Status", "Detail"]);
    for row in rows {
        table.add_row([
            row.id.clone(),
            timestamp(row.received_at_ms),
            event_action(row),
            row.repo.clone().unwrap_or_default(),
            row.status.to_string(),
            detail(row),
        ]);
    }
    table
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
