//! The bundled example's flow table (`examples/flows.txt`), parsed with the ovs-ofctl syntax
//! parser, installed with [`Bridge::apply_flow_mod`] and translated for one packet of each
//! kind the example describes: the datapath actions and the megaflow masks are what the
//! comments in the flow file promise.

use ofproto_bridge::bridge::Bridge;
use ofproto_bridge::field::Field;
use ofproto_bridge::flow::{Flow, Vlan, VLAN_CFI};
use ofproto_bridge::odp::{DropReason, OdpAction};
use ofproto_bridge::ofctl::parse_flows_file;
use ofproto_bridge::xlate::{translate, NoExtensions, XlateParams, Xlation};

const INSIDE_HOST: [u8; 6] = [2, 0, 0, 0, 1, 0x0a];
const ROUTER_IN: [u8; 6] = [2, 0, 0, 0, 0, 1];
const GATEWAY: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const RESOLVER: [u8; 6] = [2, 0, 0, 0, 0, 0x53];

fn bridge() -> Bridge {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/flows.txt"
    ))
    .expect("examples/flows.txt");
    let mut b = Bridge::new();
    for p in 1..=3 {
        b.add_port(p, true);
    }
    for fm in parse_flows_file(&text).expect("the example parses") {
        b.apply_flow_mod(&fm, 0).expect("the example installs");
    }
    b
}

fn ip(in_port: u32, src: u32, dst: u32, proto: u8, tp_dst: u16) -> Flow {
    Flow {
        in_port,
        dl_src: INSIDE_HOST,
        dl_dst: ROUTER_IN,
        dl_type: 0x0800,
        nw_src: src,
        nw_dst: dst,
        nw_proto: proto,
        nw_ttl: 64,
        tp_src: 40000,
        tp_dst,
        ..Flow::default()
    }
}

fn mac(m: [u8; 6]) -> u128 {
    m.iter().fold(0, |a, b| a << 8 | *b as u128)
}

/// Applies datapath actions to a packet modelled by its flow key; returns what was output.
fn execute(actions: &[OdpAction], packet: &Flow) -> Vec<(u32, Flow)> {
    let mut pkt = *packet;
    let mut out = Vec::new();
    for a in actions {
        match a {
            OdpAction::Output(p) => out.push((*p, pkt)),
            OdpAction::SetMasked { field, value, mask } => {
                let cur = field.get(&pkt);
                field.set(&mut pkt, (cur & !mask) | (value & mask));
            }
            OdpAction::PushVlan { tpid, tci } => {
                pkt.vlans[1] = pkt.vlans[0];
                pkt.vlans[0] = Vlan {
                    tpid: *tpid,
                    tci: tci | VLAN_CFI,
                };
            }
            OdpAction::PopVlan => {
                pkt.vlans[0] = pkt.vlans[1];
                pkt.vlans[1] = Vlan::default();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    out
}

fn xl(b: &mut Bridge, f: &Flow) -> Xlation {
    translate(
        b,
        f,
        XlateParams {
            now_ns: 0,
            may_learn: true,
        },
        &mut NoExtensions,
    )
}

const INSIDE: u32 = 0x0a01_000a; // 10.1.0.10
const OUTSIDE: u32 = 0x0808_0808; // 8.8.8.8

#[test]
fn outbound_dns_is_redirected_and_copied_to_the_tap() {
    let mut b = bridge();
    let x = xl(&mut b, &ip(1, INSIDE, OUTSIDE, 17, 53));
    assert_eq!(
        x.actions,
        vec![
            OdpAction::SetMasked {
                field: Field::EthDst,
                value: mac(RESOLVER),
                mask: 0xffff_ffff_ffff
            },
            OdpAction::SetMasked {
                field: Field::NwTtl,
                value: 63,
                mask: 0xff
            },
            OdpAction::Output(2),
            OdpAction::Output(3),
        ]
    );
    assert_eq!(
        x.rules.iter().map(|r| r.table).collect::<Vec<_>>(),
        vec![0, 1]
    );
    // The megaflow covers every outbound DNS packet with this TTL and destination MAC,
    // whatever its addresses and source port.
    assert_eq!((x.mask.nw_src, x.mask.nw_dst, x.mask.tp_src), (0, 0, 0));
    assert_eq!(
        (x.mask.in_port, x.mask.tp_dst, x.mask.nw_ttl),
        (!0, 0xffff, 0xff)
    );
}

#[test]
fn outbound_telnet_drops_and_the_rest_is_routed() {
    let mut b = bridge();
    let x = xl(&mut b, &ip(1, INSIDE, OUTSIDE, 6, 23));
    assert_eq!(x.actions, vec![OdpAction::Drop(DropReason::Action)]);
    let x = xl(&mut b, &ip(1, INSIDE, OUTSIDE, 6, 80));
    assert_eq!(
        x.actions,
        vec![
            OdpAction::SetMasked {
                field: Field::EthDst,
                value: mac(GATEWAY),
                mask: 0xffff_ffff_ffff
            },
            OdpAction::SetMasked {
                field: Field::EthSrc,
                value: mac(ROUTER_IN),
                mask: 0xffff_ffff_ffff
            },
            OdpAction::SetMasked {
                field: Field::NwTtl,
                value: 63,
                mask: 0xff
            },
            OdpAction::Output(2),
        ]
    );
    // TTL 1 cannot be routed; with no controller the packet is counted as TTL exceeded.
    let mut f = ip(1, INSIDE, OUTSIDE, 6, 80);
    f.nw_ttl = 1;
    assert_eq!(
        xl(&mut b, &f).actions,
        vec![OdpAction::Drop(DropReason::TtlExceeded)]
    );
}

#[test]
fn inbound_to_the_vlan_subnet_is_tagged() {
    let mut b = bridge();
    let mut f = ip(2, OUTSIDE, 0x0a01_0105, 6, 40000); // to 10.1.1.5
    f.dl_src = GATEWAY;
    let x = xl(&mut b, &f);
    // The parser may spell mod_vlan_vid as push_vlan plus set_field (as ovs-ofctl does for
    // OpenFlow 1.3), so check the packet that comes out rather than the exact actions.
    let mut expect = f;
    expect.dl_src = ROUTER_IN;
    expect.nw_ttl = 63;
    expect.vlans[0] = Vlan {
        tpid: 0x8100,
        tci: VLAN_CFI | 101,
    };
    assert_eq!(execute(&x.actions, &f), vec![(1, expect)]);
    assert_eq!(
        x.mask.vlans[0].tci & VLAN_CFI,
        VLAN_CFI,
        "mod_vlan_vid depends on the tag's presence"
    );
    // Elsewhere inside: untagged. Outside 10.1/16: to the controller, which is not connected.
    f.nw_dst = 0x0a01_0205;
    assert_eq!(xl(&mut b, &f).actions.last(), Some(&OdpAction::Output(1)));
    f.nw_dst = OUTSIDE;
    assert_eq!(
        xl(&mut b, &f).actions,
        vec![OdpAction::Drop(DropReason::NoController)]
    );
}

#[test]
fn arp_is_switched_by_mac_learning_and_other_traffic_drops() {
    let mut b = bridge();
    let arp = |in_port, src, dst| Flow {
        in_port,
        dl_src: src,
        dl_dst: dst,
        dl_type: 0x0806,
        ..Flow::default()
    };
    let x = xl(&mut b, &arp(1, INSIDE_HOST, [0xff; 6]));
    assert_eq!(x.actions, vec![OdpAction::Output(2), OdpAction::Output(3)]);
    let x = xl(&mut b, &arp(2, GATEWAY, INSIDE_HOST));
    assert_eq!(
        x.actions,
        vec![OdpAction::Output(1)],
        "learnt from the request"
    );
    let ipv6 = Flow {
        in_port: 1,
        dl_type: 0x86dd,
        ..Flow::default()
    };
    assert_eq!(
        xl(&mut b, &ipv6).actions,
        vec![OdpAction::Drop(DropReason::Action)]
    );
}
