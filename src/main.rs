use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use notifier::cli::Cli;
use notifier::config::ConfigErrors;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("NOTIFIER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    match notifier::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(problems) = e.downcast_ref::<ConfigErrors>() {
                // Each problem on its own line, as FILE:LINE:COLUMN: message, so editors and
                // terminals can jump to it.
                eprintln!("{problems}");
                eprintln!("error: {}", problems.summary());
                return ExitCode::FAILURE;
            }
            let mut message = format!("error: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                message.push_str(&format!("\n  caused by: {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
