//! The command line: clap derive types for every subcommand.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::store::Status;

/// Relay GitHub webhooks to Slack, durably.
#[derive(Debug, Parser)]
#[command(name = "notifier", version, about, long_about = None)]
pub struct Cli {
    /// Config file (TOML). Default: ./notifier.toml if it exists, else the embedded defaults.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// SQLite database file; overrides `[storage] path`.
    #[arg(long, global = true, value_name = "FILE")]
    pub db: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive webhooks and relay them to Slack.
    Serve {
        /// Address to listen on, IP:PORT; overrides `[server] listen`. Port 0 picks a free port.
        #[arg(long, value_name = "IP:PORT")]
        listen: Option<SocketAddr>,
    },
    /// Print the X-Hub-Signature-256 value for a payload, for testing with curl.
    Sign {
        /// Payload file; standard input if omitted.
        file: Option<PathBuf>,
        /// Environment variable holding the secret; default: the config's first secret.
        #[arg(long, value_name = "VAR")]
        secret_env: Option<String>,
    },
    /// Print the Slack message a payload would produce, without sending anything.
    Render {
        /// The X-GitHub-Event name; default: the file name up to its first dot
        /// (`pull_request.opened.json` → `pull_request`).
        #[arg(long, value_name = "EVENT")]
        event: Option<String>,
        /// Payload file (JSON, as GitHub sends it).
        file: PathBuf,
    },
    /// Check the config, or show where an event would go.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Show stored deliveries, newest first.
    Deliveries {
        #[command(flatten)]
        filter: FilterArgs,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// How many deliveries to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Run stored deliveries through today's config again: routing, rendering, sending.
    ///
    /// With no ids and no --status, replays the failed deliveries. A running `serve` picks them
    /// up within its poll interval; otherwise the next `serve` does.
    Replay {
        /// Delivery ids (X-GitHub-Delivery) to replay.
        ids: Vec<String>,
        #[command(flatten)]
        filter: FilterArgs,
        /// Show what would be replayed, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Wait for the running serve to finish them, with a progress bar, and show the outcome.
        #[arg(long)]
        wait: bool,
    },
}

/// Which deliveries a command looks at.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only deliveries with this status.
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,
    /// Only deliveries of this event (X-GitHub-Event).
    #[arg(long, value_name = "EVENT")]
    pub event: Option<String>,
    /// Only deliveries received within this long, e.g. 30m, 2h, 3days.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub since: Option<Duration>,
}

/// A delivery status, as typed on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    Pending,
    Processed,
    Skipped,
    Failed,
}

impl From<StatusArg> for Status {
    fn from(arg: StatusArg) -> Status {
        match arg {
            StatusArg::Pending => Status::Pending,
            StatusArg::Processed => Status::Processed,
            StatusArg::Skipped => Status::Skipped,
            StatusArg::Failed => Status::Failed,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate the config and list its routes; with --payload or --delivery, show which routes
    /// an event matches and why the others don't, and the message it would get. Sends nothing.
    Check {
        /// The X-GitHub-Event of --payload; default: the file name up to its first dot.
        #[arg(long, value_name = "EVENT", requires = "payload")]
        event: Option<String>,
        /// A payload file to route (JSON, as GitHub sends it).
        #[arg(long, value_name = "FILE", conflicts_with = "delivery")]
        payload: Option<PathBuf>,
        /// A stored delivery to route, by its X-GitHub-Delivery id.
        #[arg(long, value_name = "ID")]
        delivery: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
