//! `notifier render`.

use std::io::Write;
use std::path::Path;

use super::event_from_file_name;
use crate::Error;
use crate::github::{self, ContentType, Normalized};

/// `notifier render`: the Slack JSON a payload would produce, or why it would be skipped.
pub(super) fn render(event: Option<&str>, file: &Path) -> Result<(), Error> {
    let event = match event {
        Some(event) => event.to_string(),
        None => event_from_file_name(file)?,
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
