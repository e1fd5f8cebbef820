//! Property tests of the ovs-ofctl flow syntax: the parser never panics, printing is the
//! inverse of parsing on normalised flows, and generated valid flows are all accepted.

mod ofctl_gen;

use ofproto_bridge::ofctl::{format_rule, normalize_flow, parse_flow, parse_flows_file};
use proptest::prelude::*;

proptest! {
    // OFCTL_PROPTEST_CASES raises the number of cases for a longer local run.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("OFCTL_PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(2000)
    ))]

    /// Arbitrary text never panics the parser (errors are fine).
    #[test]
    fn never_panics_on_arbitrary_strings(s in "\\PC{0,80}") {
        let _ = parse_flow(&s);
        let _ = parse_flows_file(&s);
    }

    /// Text made of flow-syntax characters and keywords never panics the parser either.
    #[test]
    fn never_panics_on_flow_like_strings(
        parts in proptest::collection::vec(
            prop_oneof![
                "[a-z_]{1,12}",
                "[0-9a-fx:./,=()>\\-\\[\\] ]{1,12}",
                proptest::sample::select(vec![
                    "actions=", "tcp", "ip", "ipv6", "icmp6", "arp", "mpls", "tp_dst=", "nw_src=",
                    "set_field:", "->", "load:", "[0..3]", "resubmit(", ",", ")", "output:",
                    "vlan_tci=", "/", "0x", "::", "dl_vlan=", "goto_table:", "bpf(", "prog:",
                    "tcp_flags=+", "-", "ip_frag=", "nd_target=", "icmp_type=135",
                ]).prop_map(str::to_string),
            ],
            0..12,
        )
    ) {
        let s = parts.concat();
        let _ = parse_flow(&s);
    }

    /// Every generated valid flow parses; printing it and parsing the print gives the same
    /// rule; printing is a fixpoint.
    #[test]
    fn format_then_parse_is_identity(flow in ofctl_gen::flow()) {
        let rule = parse_flow(&flow).map_err(|e| TestCaseError::fail(format!("{flow}: {e}")))?;
        let text = format_rule(&rule);
        let again = parse_flow(&text).map_err(|e| TestCaseError::fail(format!("{flow} -> {text}: {e}")))?;
        prop_assert_eq!(&again, &rule, "{} -> {}", flow, text);
        prop_assert_eq!(format_rule(&again), text.clone());
        prop_assert_eq!(normalize_flow(&flow).unwrap(), text);
        // The match invariant: no value bit outside the mask.
        let m = &rule.r#match;
        prop_assert_eq!(m.flow.masked(&m.mask), m.flow);
    }
}
