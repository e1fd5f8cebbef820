//! `bpfswitch parse-flow "<flow>"`: a flow in `ovs-ofctl add-flow` syntax, printed in the
//! normalised form `ovs-ofctl -O OpenFlow13 parse-flow` prints after `ADD `.
//!
//! A flow that does not parse is reported with the offending token's column and a caret under
//! it, and exits with 2 (as a syntax error is a usage error).

use super::CliError;

/// Arguments of `bpfswitch parse-flow`.
#[derive(clap::Args, Debug, Clone)]
pub struct ParseFlowArgs {
    /// The flow, e.g. "table=1,priority=10,tcp,tp_dst=80,actions=output:2" (quote it).
    #[arg(value_name = "FLOW")]
    pub flow: String,
}

/// Runs `bpfswitch parse-flow`.
pub fn run(args: &ParseFlowArgs) -> Result<(), CliError> {
    let normal = parse(&args.flow)?;
    println!("{normal}");
    Ok(())
}

/// The normalised text of `flow`, or a usage error that shows the flow with a caret under
/// the offending column.
pub fn parse(flow: &str) -> Result<String, CliError> {
    ofproto_bridge::ofctl::normalize_flow(flow).map_err(|e| CliError::Usage(describe(flow, &e)))
}

/// The error message with the flow and a caret under the column the error points at.
fn describe(flow: &str, e: &ofproto_bridge::ofctl::OfctlError) -> String {
    let mut msg = format!("parse-flow: {e}");
    if let Some(col) = e.column() {
        // The column counts characters; pad with the same number of characters (tabs kept,
        // so the caret lines up in a terminal).
        let pad: String = flow
            .chars()
            .take(col.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        msg.push_str(&format!("\n  {flow}\n  {pad}^"));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_points_at_the_bad_token() {
        assert_eq!(
            parse("priority=10,tcp,tp_dst=80,actions=output:2").unwrap(),
            "priority=10,tcp,tp_dst=80 actions=output:2"
        );
        let CliError::Usage(m) = parse("tcp,tp_dst=80,actions=frobnicate").unwrap_err() else {
            panic!("syntax errors are usage errors");
        };
        assert!(m.contains("column 23"), "{m}");
        assert!(m.ends_with(&format!("\n  {}^", " ".repeat(22))), "{m}");
    }
}
