//! The `bpfswitch` command: dispatches to the subcommands in `bpfswitch::cli`, `replay`,
//! `daemon` and `bench`.

use clap::{Parser, Subcommand};

/// A userspace OpenFlow switch extensible at runtime with eBPF programs.
#[derive(Parser, Debug)]
#[command(name = "bpfswitch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the flow-cache benchmark scenarios.
    Bench(bpfswitch::bench::BenchArgs),
}

fn main() {
    let cli = Cli::parse();
    let r = match &cli.command {
        Command::Bench(a) => bpfswitch::bench::run(a),
    };
    if let Err(e) = r {
        eprintln!("bpfswitch: {e}");
        std::process::exit(match e {
            bpfswitch::cli::CliError::Usage(_) => 2,
            _ => 1,
        });
    }
}
