//! `notifier sign`.

use std::io::Read;
use std::path::Path;

use crate::Error;
use crate::config::Config;
use crate::signature::{self, Secret};

/// `notifier sign`: prints `sha256=<hex>` for a payload.
pub(super) fn sign(
    config: &Config,
    file: Option<&Path>,
    secret_env: Option<&str>,
) -> Result<(), Error> {
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
