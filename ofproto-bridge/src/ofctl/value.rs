//! Parsers for the values written in flows: integers (decimal, `0x` hexadecimal, and
//! C-style octal with a leading zero, as ovs-ofctl's `strtoull(.., 0)` reads them), Ethernet,
//! IPv4 and IPv6 addresses with CIDR or dotted masks, OpenFlow port numbers and names, TCP
//! flags and IP fragment classes.
//!
//! Each parser takes the whole value text and returns the value or a message saying why it
//! is not one; the caller turns the message into an error carrying the column.

use crate::action::{
    PortNo, OFPP_ALL, OFPP_ANY, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_LOCAL, OFPP_NORMAL,
    OFPP_TABLE,
};
use crate::flow::{FRAG_ANY, FRAG_LATER};
use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take_while1, take_while_m_n};
use nom::character::complete::{char, digit0, digit1, hex_digit1, oct_digit1, one_of};
use nom::combinator::{all_consuming, map_res, opt, recognize};
use nom::multi::separated_list1;
use nom::sequence::{pair, preceded};
use nom::IResult;
use std::net::Ipv6Addr;

/// Named TCP flag bits, lowest first, as ovs-ofctl names them.
pub(crate) const TCP_FLAG_NAMES: [(&str, u16); 9] = [
    ("fin", 0x001),
    ("syn", 0x002),
    ("rst", 0x004),
    ("psh", 0x008),
    ("ack", 0x010),
    ("urg", 0x020),
    ("ece", 0x040),
    ("cwr", 0x080),
    ("ns", 0x100),
];

/// All 12 TCP flag bits.
pub(crate) const TCP_FLAGS_ALL: u16 = 0x0fff;

fn hex_number(i: &str) -> IResult<&str, u128> {
    map_res(preceded(tag_no_case("0x"), hex_digit1), |h: &str| {
        u128::from_str_radix(h, 16)
    })(i)
}

fn octal_number(i: &str) -> IResult<&str, u128> {
    map_res(preceded(char('0'), oct_digit1), |o: &str| {
        u128::from_str_radix(o, 8)
    })(i)
}

fn decimal_number(i: &str) -> IResult<&str, u128> {
    map_res(digit1, |d: &str| d.parse::<u128>())(i)
}

/// A C decimal constant: `0`, or digits not starting with `0` (which would mean octal).
fn c_decimal_number(i: &str) -> IResult<&str, u128> {
    map_res(
        alt((recognize(pair(one_of("123456789"), digit0)), tag("0"))),
        |d: &str| d.parse::<u128>(),
    )(i)
}

/// An unsigned integer as `strtoull(s, NULL, 0)` reads it: optional `+`, then `0x` hex,
/// `0`-prefixed octal, or decimal. The whole string must be consumed.
pub(crate) fn uint(s: &str) -> Result<u128, String> {
    let r: IResult<&str, u128> = all_consuming(preceded(
        opt(char('+')),
        alt((hex_number, octal_number, c_decimal_number)),
    ))(s);
    match r {
        Ok((_, v)) => Ok(v),
        Err(_) if s.starts_with('-') => Err(format!("{s}: negative values are not allowed")),
        Err(_) => Err(format!("{s}: invalid number")),
    }
}

/// An unsigned integer that must fit in `bits` bits.
pub(crate) fn uint_bits(s: &str, bits: u32, what: &str) -> Result<u128, String> {
    let v = uint(s)?;
    if bits < 128 && v >> bits != 0 {
        return Err(format!("{s}: value too large for {bits}-bit {what}"));
    }
    Ok(v)
}

/// A table id: decimal only (leading zeros do not make it octal), as ovs-ofctl reads
/// `table=`, `goto_table:` and `resubmit(,T)`.
pub(crate) fn table_id(s: &str) -> Result<u8, String> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    match decimal_only(digits) {
        Some(n) if n <= 255 => Ok(n as u8),
        Some(_) => Err(format!("{s}: table id is outside the range 0 through 255")),
        None => Err(format!("{s}: invalid table id (a decimal number)")),
    }
}

/// A decimal-only unsigned integer (how ovs-ofctl reads port numbers).
fn decimal_only(s: &str) -> Option<u128> {
    let r: IResult<&str, u128> = all_consuming(decimal_number)(s);
    r.ok().map(|(_, v)| v)
}

fn mac_byte(i: &str) -> IResult<&str, u8> {
    map_res(
        take_while_m_n(1, 2, |c: char| c.is_ascii_hexdigit()),
        |h: &str| u8::from_str_radix(h, 16),
    )(i)
}

/// An Ethernet address `xx:xx:xx:xx:xx:xx` (1 or 2 hex digits per byte) as a 48-bit number.
pub(crate) fn mac(s: &str) -> Result<u128, String> {
    let r: IResult<&str, Vec<u8>> = all_consuming(separated_list1(char(':'), mac_byte))(s);
    match r {
        Ok((_, bytes)) if bytes.len() == 6 => {
            Ok(bytes.iter().fold(0u128, |acc, b| acc << 8 | *b as u128))
        }
        _ => Err(format!("{s}: invalid Ethernet address")),
    }
}

fn ipv4_octet(i: &str) -> IResult<&str, u8> {
    map_res(take_while1(|c: char| c.is_ascii_digit()), |d: &str| {
        if d.len() > 3 {
            Err(())
        } else {
            d.parse::<u8>().map_err(|_| ())
        }
    })(i)
}

/// A dotted-quad IPv4 address, as a host-order number.
pub(crate) fn ipv4(s: &str) -> Result<u32, String> {
    let r: IResult<&str, Vec<u8>> = all_consuming(separated_list1(char('.'), ipv4_octet))(s);
    match r {
        Ok((_, o)) if o.len() == 4 => Ok(u32::from_be_bytes([o[0], o[1], o[2], o[3]])),
        _ => Err(format!("{s}: invalid IP address")),
    }
}

/// An IPv6 address (any textual form, including embedded IPv4), as a 128-bit number.
pub(crate) fn ipv6(s: &str) -> Result<u128, String> {
    let r: IResult<&str, &str> = all_consuming(recognize(take_while1(|c: char| {
        c.is_ascii_hexdigit() || c == ':' || c == '.'
    })))(s);
    match r {
        Ok((_, text)) => text
            .parse::<Ipv6Addr>()
            .map(u128::from)
            .map_err(|_| format!("{s}: invalid IPv6 address")),
        Err(_) => Err(format!("{s}: invalid IPv6 address")),
    }
}

/// Splits `value/mask` at the first `/`.
pub(crate) fn split_mask(s: &str) -> (&str, Option<&str>) {
    match s.split_once('/') {
        Some((v, m)) => (v, Some(m)),
        None => (s, None),
    }
}

/// A mask of `bits` leading ones in a `width`-bit field.
pub(crate) fn prefix_mask(bits: u32, width: u32) -> u128 {
    let full = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    if bits == 0 {
        0
    } else {
        (full << (width - bits)) & full
    }
}

/// An IPv4 address with an optional `/N` prefix length or `/a.b.c.d` mask.
pub(crate) fn ipv4_masked(s: &str) -> Result<(u32, u32), String> {
    let (v, m) = split_mask(s);
    let addr = ipv4(v).map_err(|_| format!("{s}: invalid IP address"))?;
    let mask = match m {
        None => u32::MAX,
        Some(m) if m.contains('.') => ipv4(m).map_err(|_| format!("{s}: invalid IP address"))?,
        Some(m) => match decimal_only(m) {
            Some(n) if n <= 32 => prefix_mask(n as u32, 32) as u32,
            _ => {
                return Err(format!(
                    "{s}: IPv4 network prefix bits not between 0 and 32, inclusive"
                ))
            }
        },
    };
    Ok((addr, mask))
}

/// An IPv6 address with an optional `/N` prefix length or address-form mask.
pub(crate) fn ipv6_masked(s: &str) -> Result<(u128, u128), String> {
    let (v, m) = split_mask(s);
    let addr = ipv6(v)?;
    let mask = match m {
        None => u128::MAX,
        // Like ovs-ofctl, a mask that starts with a digit is read as a prefix length, so a
        // mask such as "8000::" must be written as "/1" instead.
        Some(m) if !m.starts_with(|c: char| c.is_ascii_digit()) => ipv6(m)?,
        Some(m) => match decimal_only(m) {
            Some(n) if n <= 128 => prefix_mask(n as u32, 128),
            _ => {
                return Err(format!(
                    "{s}: IPv6 network prefix bits not between 0 and 128, inclusive"
                ))
            }
        },
    };
    Ok((addr, mask))
}

/// Reserved OpenFlow port names (OpenFlow 1.1+ numbering), as ovs-ofctl prints them.
pub(crate) const PORT_NAMES: [(&str, PortNo); 8] = [
    ("IN_PORT", OFPP_IN_PORT),
    ("TABLE", OFPP_TABLE),
    ("NORMAL", OFPP_NORMAL),
    ("FLOOD", OFPP_FLOOD),
    ("ALL", OFPP_ALL),
    ("CONTROLLER", OFPP_CONTROLLER),
    ("LOCAL", OFPP_LOCAL),
    ("ANY", OFPP_ANY),
];

/// First OpenFlow 1.0 reserved port number (0xff00); these map to 0xffffff00 and up.
const OFPP10_MAX: u128 = 0xff00;
/// First OpenFlow 1.1+ reserved port number.
const OFPP11_MAX: u128 = 0xffff_ff00;

/// An OpenFlow port: a reserved name (any case; `NONE` is `ANY`) or a decimal number.
///
/// Numbers below 0xff00 are physical ports; 0xff00-0xffff are OpenFlow 1.0 reserved numbers
/// and are translated to their OpenFlow 1.1+ values, as ovs-ofctl does; 0xffffff00 and up are
/// taken as they are; anything else is out of range.
pub(crate) fn port(s: &str) -> Result<PortNo, String> {
    if let Some((_, p)) = PORT_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
        return Ok(*p);
    }
    if s.eq_ignore_ascii_case("none") {
        return Ok(OFPP_ANY);
    }
    // Port numbers are decimal, with an optional '+' (as strtoul reads them).
    let digits = s.strip_prefix('+').unwrap_or(s);
    match decimal_only(digits) {
        Some(n) if n < OFPP10_MAX => Ok(n as PortNo),
        Some(n) if n <= 0xffff => Ok((n + 0xffff_0000) as PortNo),
        Some(n) if (OFPP11_MAX..=0xffff_ffff).contains(&n) => Ok(n as PortNo),
        Some(_) => Err(format!(
            "{s}: port is outside the supported range 0 through ffff or 0xffffff00 through 0xffffffff"
        )),
        None => Err(format!("{s}: invalid or unknown port")),
    }
}

/// The name of a reserved port, if `p` is one.
pub(crate) fn port_name(p: PortNo) -> Option<&'static str> {
    PORT_NAMES
        .iter()
        .find(|(_, n)| *n == p)
        .map(|(name, _)| *name)
}

fn tcp_flag_bit(name: &str) -> Option<u16> {
    if let Some((_, b)) = TCP_FLAG_NAMES.iter().find(|(n, _)| *n == name) {
        return Some(*b);
    }
    // Unnamed bits are written as their hexadecimal value in brackets, e.g. "[200]".
    let inner = name.strip_prefix('[')?.strip_suffix(']')?;
    let v = u16::from_str_radix(inner, 16).ok()?;
    (v.count_ones() == 1 && v & TCP_FLAGS_ALL == v).then_some(v)
}

/// TCP flags: a number with an optional mask, `name|name...` (all 12 bits significant), or
/// `+name-name...` (only the named bits significant).
pub(crate) fn tcp_flags(s: &str) -> Result<(u16, u16), String> {
    let unknown = || format!("{s}: unknown TCP flag(s)");
    if s.starts_with('+') || s.starts_with('-') {
        let (mut value, mut mask) = (0u16, 0u16);
        let mut rest = s;
        while !rest.is_empty() {
            let set = rest.starts_with('+');
            rest = &rest[1..];
            let end = rest.find(['+', '-']).unwrap_or(rest.len());
            let bit = tcp_flag_bit(&rest[..end]).ok_or_else(unknown)?;
            if mask & bit != 0 {
                return Err(format!("{s}: TCP flag {} given twice", &rest[..end]));
            }
            mask |= bit;
            if set {
                value |= bit;
            }
            rest = &rest[end..];
        }
        return Ok((value, mask));
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        let (v, m) = split_mask(s);
        let value = uint_bits(v, 12, "field tcp_flags")? as u16;
        let mask = match m {
            Some(m) => uint_bits(m, 12, "field tcp_flags")? as u16,
            None => TCP_FLAGS_ALL,
        };
        return Ok((value & mask, mask));
    }
    let mut value = 0u16;
    for name in s.split('|') {
        value |= tcp_flag_bit(name).ok_or_else(unknown)?;
    }
    Ok((value, TCP_FLAGS_ALL))
}

/// An IP fragment class as `(value, mask)` of the flow's `nw_frag`.
pub(crate) fn frag(s: &str) -> Result<(u8, u8), String> {
    let both = FRAG_ANY | FRAG_LATER;
    // ovs-ofctl compares fragment types without regard to case.
    Ok(match s.to_ascii_lowercase().as_str() {
        "no" => (0, FRAG_ANY),
        "yes" => (FRAG_ANY, FRAG_ANY),
        "first" => (FRAG_ANY, both),
        "later" => (both, both),
        "not_later" => (0, FRAG_LATER),
        _ => {
            return Err(format!(
                "{s}: unknown fragment type (valid types are \"no\", \"yes\", \"first\", \"later\", \"not_later\")"
            ))
        }
    })
}

/// A name for an extension program (`bpf_filter=NAME`, `bpf(NAME)`): letters, digits, `_`,
/// `-` and `.`.
pub(crate) fn ext_name(s: &str) -> Result<&str, String> {
    let r: IResult<&str, &str> = all_consuming(take_while1(|c: char| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
    }))(s);
    r.map(|(_, n)| n).map_err(|_| {
        format!("{s}: invalid extension name (letters, digits, '_', '-' and '.' only)")
    })
}

/// A `[start..end]`, `[bit]` or `[]` bit range after a field name in `load:V->F[..]`.
/// Returns `(start, end)` inclusive, or `None` for the whole field.
pub(crate) fn bit_range(s: &str) -> Result<Option<(u32, u32)>, String> {
    let r: IResult<&str, Option<(u128, Option<u128>)>> = all_consuming(nom::sequence::delimited(
        char('['),
        opt(pair(
            decimal_number,
            opt(preceded(tag(".."), decimal_number)),
        )),
        char(']'),
    ))(s);
    match r {
        Ok((_, None)) => Ok(None),
        Ok((_, Some((a, b)))) => {
            let b = b.unwrap_or(a);
            if a > b || b > 127 {
                return Err(format!("{s}: invalid bit range"));
            }
            Ok(Some((a as u32, b as u32)))
        }
        Err(_) => Err(format!(
            "{s}: invalid bit range (expected [], [N] or [START..END])"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_like_strtoull() {
        assert_eq!(uint("80"), Ok(80));
        assert_eq!(uint("0x50"), Ok(80));
        assert_eq!(uint("0X50"), Ok(80));
        assert_eq!(uint("010"), Ok(8));
        assert_eq!(uint("+5"), Ok(5));
        assert_eq!(uint("0"), Ok(0));
        assert!(uint("-1").is_err());
        assert!(uint("08").is_err());
        assert!(uint("12a").is_err());
        assert!(uint("").is_err());
        assert!(uint_bits("65536", 16, "field").is_err());
        assert_eq!(uint_bits("65535", 16, "field"), Ok(65535));
    }

    #[test]
    fn addresses() {
        assert_eq!(mac("0:1:2:3:4:5"), Ok(0x0001_0203_0405));
        assert_eq!(mac("AA:bb:cc:dd:ee:ff"), Ok(0xaabb_ccdd_eeff));
        assert!(mac("00:11:22:33:44").is_err());
        assert!(mac("00-11-22-33-44-55").is_err());
        assert_eq!(ipv4("10.1.2.3"), Ok(0x0a01_0203));
        assert!(ipv4("10.0.0.256").is_err());
        assert!(ipv4("10.0.0").is_err());
        assert_eq!(ipv4_masked("10.1.2.3/8"), Ok((0x0a01_0203, 0xff00_0000)));
        assert_eq!(
            ipv4_masked("10.1.2.3/255.0.255.0"),
            Ok((0x0a01_0203, 0xff00_ff00))
        );
        assert_eq!(ipv4_masked("1.2.3.4/0"), Ok((0x0102_0304, 0)));
        assert!(ipv4_masked("1.2.3.4/33").is_err());
        assert_eq!(ipv6("::1"), Ok(1));
        assert_eq!(
            ipv6_masked("2001:db8::/32").map(|x| x.1),
            Ok(prefix_mask(32, 128))
        );
        assert!(ipv6_masked("::1/129").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(port("LOCAL"), Ok(OFPP_LOCAL));
        assert_eq!(port("local"), Ok(OFPP_LOCAL));
        assert_eq!(port("none"), Ok(OFPP_ANY));
        assert_eq!(port("65534"), Ok(OFPP_LOCAL));
        assert_eq!(port("4294967294"), Ok(OFPP_LOCAL));
        assert_eq!(port("05"), Ok(5));
        assert_eq!(port("+0613"), Ok(613));
        assert!(port("0x5").is_err());
        assert!(port("70000").is_err());
        assert!(port("foo").is_err());
    }

    #[test]
    fn tcp_flag_forms() {
        assert_eq!(tcp_flags("+syn-ack"), Ok((0x002, 0x012)));
        assert_eq!(tcp_flags("syn|ack"), Ok((0x012, 0xfff)));
        assert_eq!(tcp_flags("0x2/0x7"), Ok((0x002, 0x007)));
        assert_eq!(tcp_flags("+[200]"), Ok((0x200, 0x200)));
        assert!(tcp_flags("syn+ack").is_err());
        assert!(tcp_flags("+syn+syn").is_err());
    }

    #[test]
    fn bit_ranges() {
        assert_eq!(bit_range("[]"), Ok(None));
        assert_eq!(bit_range("[3]"), Ok(Some((3, 3))));
        assert_eq!(bit_range("[0..7]"), Ok(Some((0, 7))));
        assert!(bit_range("[7..0]").is_err());
        assert!(bit_range("0..7").is_err());
    }
}
