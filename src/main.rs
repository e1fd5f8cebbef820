//! The `bpfswitch` command: dispatches to the subcommands in `bpfswitch::cli`, `replay`,
//! `daemon` and `bench`.

use clap::{Parser, Subcommand};

/// mimalloc: flow set-ups allocate and free a few small buffers each (actions, rules), and
/// glibc's allocator spent a quarter of the upcall path consolidating and unlinking chunks.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A userspace OpenFlow switch extensible at runtime with eBPF programs.
#[derive(Parser, Debug)]
#[command(name = "bpfswitch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    // --- offline commands (src/replay.rs, src/cli/) ---
    /// Runs captures through a flow table into per-port captures (no arguments: the bundled
    /// example).
    Replay(bpfswitch::replay::ReplayArgs),
    /// Prints a flow in ovs-ofctl's normalised form (as `ovs-ofctl parse-flow`).
    ParseFlow(bpfswitch::cli::parse_flow::ParseFlowArgs),
    /// Runs the verifier on a BPF object's program and prints its report (exit 0 accept,
    /// 1 reject).
    Verify(bpfswitch::cli::verify::VerifyArgs),
    /// eBPF extensions: run one offline, or load into, list and unload from the running
    /// switch.
    #[command(subcommand)]
    Ext(ExtCommand),
    // --- end of offline commands ---
    /// Runs the flow-cache benchmark scenarios.
    Bench(bpfswitch::bench::BenchArgs),
    // The running switch and its client verbs (bpfswitch::daemon).
    /// Runs the switch on network interfaces, controlled over a Unix socket.
    Daemon(bpfswitch::daemon::DaemonArgs),
    /// Maps of the running switch's extensions: dump, update, delete.
    #[command(subcommand)]
    Map(bpfswitch::daemon::client::MapVerb),
    #[command(flatten)]
    Switch(bpfswitch::daemon::client::SwitchVerb),
    // End of the running switch's verbs.
}

/// `bpfswitch ext ...`.
#[derive(Subcommand, Debug)]
enum ExtCommand {
    /// Runs a program on one packet offline (like `bpftool prog run`).
    Run(bpfswitch::cli::ext_run::ExtRunArgs),
    // The running switch's `ext` verbs (load, list, unload).
    #[command(flatten)]
    Switch(bpfswitch::daemon::client::ExtVerb),
}

fn main() {
    let cli = Cli::parse();
    let r = match &cli.command {
        Command::Replay(a) => bpfswitch::replay::run(a),
        Command::ParseFlow(a) => bpfswitch::cli::parse_flow::run(a),
        Command::Verify(a) => match bpfswitch::cli::verify::run(a) {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => Err(e),
        },
        Command::Ext(ExtCommand::Run(a)) => bpfswitch::cli::ext_run::run(a).map(|_| ()),
        Command::Bench(a) => bpfswitch::bench::run(a),
        Command::Daemon(a) => bpfswitch::daemon::run(a),
        Command::Ext(ExtCommand::Switch(v)) => bpfswitch::daemon::client::ext(v),
        Command::Map(v) => bpfswitch::daemon::client::map(v),
        Command::Switch(v) => bpfswitch::daemon::client::switch(v),
    };
    if let Err(e) = r {
        eprintln!("bpfswitch: {e}");
        std::process::exit(match e {
            bpfswitch::cli::CliError::Usage(_) => 2,
            _ => 1,
        });
    }
}
