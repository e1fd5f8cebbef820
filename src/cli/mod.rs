//! The command line's subcommands, each in its own module; `main.rs` only dispatches.

/// Errors a subcommand reports to the user (printed as `bpfswitch: <message>`, exit code 1;
/// usage errors exit with 2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Wrong or inconsistent arguments.
    #[error("{0}")]
    Usage(String),
    /// Anything else, with its context.
    #[error("{0}")]
    Failed(String),
}
