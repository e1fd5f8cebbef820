//! The flow-cache benchmark harness behind `bpfswitch bench` (issue 5).

/// Arguments of `bpfswitch bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Scenarios to run (all when none are named).
    pub scenarios: Vec<String>,
}

/// Runs `bpfswitch bench`.
pub fn run(args: &BenchArgs) -> Result<(), crate::cli::CliError> {
    let _ = args;
    Err(crate::cli::CliError::Usage("bench: not built yet".into()))
}
