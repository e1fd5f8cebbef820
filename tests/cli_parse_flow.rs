//! `bpfswitch parse-flow` against Open vSwitch's `ovs-ofctl -O OpenFlow13 parse-flow` on a
//! handful of flows covering the command's paths (the 80-flow differential of the parser
//! itself is `ofproto-bridge/tests/ofctl_differential.rs`), and its error reporting: the
//! offending token's column with a caret, exit status 2.

mod cli_common;
use cli_common::*;
use std::process::Command;

const FLOWS: &[&str] = &[
    "in_port=1,actions=output:2",
    "priority=100,tcp,nw_src=10.0.0.0/8,tp_dst=80,actions=mod_nw_dst:10.1.1.1,output:3",
    "table=3,cookie=0x42,idle_timeout=30,ipv6,ipv6_dst=2001:db8::/32,actions=dec_ttl,resubmit(,4)",
    "arp,arp_tpa=10.0.0.1,actions=normal",
    "dl_vlan=10,actions=strip_vlan,output:LOCAL",
    "udp,tp_src=0x1000/0xf000,actions=set_field:5->udp_dst,controller:128",
    "icmp6,icmp_type=135,nd_target=fe80::1,actions=drop",
    "ip,nw_dst=192.168.0.0/255.255.0.0,dl_src=00:11:22:33:44:55/ff:ff:ff:00:00:00,actions=push_vlan:0x8100,mod_vlan_vid:7,flood",
    "priority=0,actions=",
];

fn ovs(flow: &str) -> Option<String> {
    let o = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "parse-flow", flow])
        .output()
        .ok()?;
    assert!(
        o.status.success(),
        "ovs-ofctl rejects {flow}: {}",
        stderr(&o)
    );
    let out = stdout(&o);
    Some(
        out.lines()
            .find_map(|l| l.split_once("): ADD ").map(|(_, r)| r.to_string()))
            .unwrap_or_else(|| panic!("no ADD line from ovs-ofctl: {out}")),
    )
}

#[test]
fn prints_what_ovs_ofctl_prints() {
    let have = Command::new("ovs-ofctl").arg("--version").output().is_ok();
    if !have {
        eprintln!(
            "\n*** SKIPPED: ovs-ofctl is not installed (apt-get install openvswitch-common); \
             parse-flow was NOT compared with Open vSwitch. ***\n"
        );
    }
    for f in FLOWS {
        let ours = ok(&run(&["parse-flow", f]));
        let ours = ours.trim_end_matches('\n');
        assert!(
            !ours.is_empty() && !ours.contains('\n'),
            "one line: {ours:?}"
        );
        if have {
            assert_eq!(ours, ovs(f).unwrap(), "flow: {f}");
        }
        // Our output parses back to itself.
        let again = ok(&run(&["parse-flow", ours]));
        assert_eq!(again.trim_end(), ours, "round trip of {f}");
    }
}

#[test]
fn syntax_errors_show_the_column_and_exit_with_2() {
    let o = run(&["parse-flow", "tcp,tp_dst=80,actions=frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let e = stderr(&o);
    assert!(e.contains("column 23") && e.contains("frobnicate"), "{e}");
    let lines: Vec<&str> = e.lines().collect();
    let caret = lines
        .iter()
        .position(|l| l.trim() == "^")
        .expect("a caret line");
    let flow_line = lines[caret - 1];
    let col = lines[caret].find('^').unwrap();
    assert_eq!(&flow_line[col..col + 10], "frobnicate", "{e}");

    // A missing prerequisite names it.
    let o = run(&["parse-flow", "priority=5,tp_dst=80,actions=drop"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("column 12") && e.contains("requires tcp, udp or sctp"),
        "{e}"
    );

    // A bad value.
    let o = run(&["parse-flow", "nw_src=10.0.0.300,ip,actions=drop"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("column"), "{}", stderr(&o));
}
