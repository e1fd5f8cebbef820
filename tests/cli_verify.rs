//! `bpfswitch verify`: the verifier's report for clang-built objects. ttl_dec is accepted and
//! its read and write sets are named as header fields; every object in extensions/unsafe/ is
//! rejected with the offending instruction, disassembled in context, and a reason; exit
//! status 0 / 1 / 2 for accept / reject / not analysable.

mod cli_common;
use cli_common::*;

#[test]
fn ttl_dec_is_accepted_and_writes_the_ttl_and_the_checksum() {
    let o = run(&["verify", "extensions/ttl_dec.o"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let t = stdout(&o);
    assert!(t.contains("program ttl_dec (section xdp, xdp ABI)"), "{t}");
    assert!(t.contains("verdict: ACCEPT"), "{t}");
    assert!(t.contains("packet writes: [22, 23) [24, 26)"), "{t}");
    assert!(t.contains("writes ipv4.ttl, ipv4.checksum"), "{t}");
    assert!(t.contains("stateful: no"), "{t}");
    assert!(t.contains("may resize packet: no"), "{t}");

    let o = run(&["verify", "extensions/ttl_dec.o", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["verdict"], "accept");
    assert_eq!(j["program"], "ttl_dec");
    assert_eq!(
        j["writes_fields_udp"],
        serde_json::json!(["ipv4.ttl", "ipv4.checksum"])
    );
    assert_eq!(
        j["packet_writes"]["Ranges"],
        serde_json::json!([{"start": 22, "end": 23}, {"start": 24, "end": 26}])
    );

    // --states prints the abstract state at each instruction.
    let o = run(&["verify", "extensions/ttl_dec.o", "--states"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).lines().count() > 26, "{}", stdout(&o));
}

#[test]
fn stateful_and_ubpf_programs() {
    let t = ok(&run(&["verify", "extensions/fw_stateful_filter.o"]));
    assert!(t.contains("stateful: yes"), "{t}");
    assert!(t.contains("conntrack (lru_hash"), "{t}");
    assert!(t.contains("xdp_md.ingress_ifindex"), "{t}");
    let t = ok(&run(&["verify", "extensions/ubpf/oko_blocklist.o"]));
    assert!(
        t.contains("ubpf ABI") && t.contains("verdict: ACCEPT"),
        "{t}"
    );
}

#[test]
fn unsafe_programs_are_rejected_with_the_instruction_and_the_reason() {
    let o = run(&["verify", "extensions/unsafe/oob_read.o"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let t = stdout(&o);
    assert!(t.contains("verdict: REJECT at instruction 6"), "{t}");
    assert!(t.contains("out of bounds"), "{t}");
    assert!(
        t.lines()
            .any(|l| l.trim_start().starts_with("> ") && l.contains("6: r1 = *(u8 *)(r1 + 23)")),
        "the offending instruction is marked and disassembled: {t}"
    );
    let j: serde_json::Value = serde_json::from_str(&stdout(&run(&[
        "verify",
        "extensions/unsafe/oob_read.o",
        "--json",
    ])))
    .unwrap();
    assert_eq!(j["verdict"], "reject");
    assert_eq!(j["insn"], 6);
    assert!(j["context"].as_array().unwrap().len() >= 4);

    let mut n = 0;
    for e in std::fs::read_dir(root().join("extensions/unsafe"))
        .unwrap()
        .flatten()
    {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("o") {
            continue;
        }
        n += 1;
        let o = run(&["verify", p.to_str().unwrap()]);
        let t = stdout(&o);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}: {t}{}",
            p.display(),
            stderr(&o)
        );
        let line = t
            .lines()
            .find(|l| l.starts_with("verdict: REJECT at instruction "))
            .unwrap_or_else(|| panic!("{}: {t}", p.display()));
        let (_, reason) = line
            .split_once(": ")
            .and_then(|(_, r)| r.split_once(": "))
            .unwrap();
        assert!(
            reason.len() > 10,
            "{}: a reason a person understands: {line}",
            p.display()
        );
    }
    assert!(n >= 10, "only {n} unsafe objects");
}

#[test]
fn not_analysable_exits_with_2() {
    let o = run(&["verify", "Cargo.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Cargo.toml"), "{}", stderr(&o));
    let o = run(&["verify", "extensions/ttl_dec.o", "--section", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("nope") && stderr(&o).contains("xdp"),
        "{}",
        stderr(&o)
    );
}
