//! Splitting flow text into `key[=value]` pairs the way ovs-ofctl does
//! (Open vSwitch's `ofputil_parse_key_value`).
//!
//! Pairs are separated by commas or white space. A key ends at `=`, `:`, `(`, a comma or
//! white space. After `=` or `:` the value runs to the next comma or white space that is not
//! inside parentheses; after `(` it runs to the matching `)`, so `resubmit(,3)` and
//! `output(port=1,max_len=100)` are single pairs. Every slice returned borrows from the input,
//! so error messages can report the column of any key or value.

use nom::bytes::complete::{take_till, take_while};
use nom::IResult;

/// One `key[=value]` pair.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Pair<'a> {
    /// The key (may be empty when the text has a stray `=`).
    pub key: &'a str,
    /// The value, empty when the key stood alone.
    pub value: &'a str,
    /// Whether the key was followed by a delimiter that introduces a value (`=`, `:`, `(`).
    pub has_value: bool,
    /// Whether the value was written in parentheses (`key(value)`).
    pub parenthesised: bool,
    /// For a parenthesised value: whether its closing `)` was found.
    pub closed: bool,
    /// The whole pair as written (key through value), for error messages.
    pub text: &'a str,
}

fn is_sep(c: char) -> bool {
    matches!(c, ',' | ' ' | '\t' | '\r' | '\n')
}

fn separators(i: &str) -> IResult<&str, &str> {
    take_while(is_sep)(i)
}

fn key(i: &str) -> IResult<&str, &str> {
    take_till(|c| is_sep(c) || matches!(c, ':' | '=' | '('))(i)
}

/// Length of a value that ends at a top-level character accepted by `end` (parentheses nest).
fn value_len(s: &str, end: impl Fn(char) -> bool) -> usize {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        if depth == 0 && end(c) {
            return i;
        }
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    s.len()
}

/// Splits `input` into pairs. Never fails: oddities (empty keys, unbalanced parentheses)
/// surface as pairs that the flow parser then rejects with their column.
pub(crate) fn pairs(input: &str) -> Vec<Pair<'_>> {
    let mut out = Vec::new();
    let mut rest = input;
    while let Ok((r, _)) = separators(rest) {
        rest = r;
        if rest.is_empty() {
            break;
        }
        let start = rest;
        let Ok((r, k)) = key(rest) else { break };
        rest = r;
        let delim = rest.chars().next();
        let (has_value, parenthesised) = match delim {
            Some('=') | Some(':') => (true, false),
            Some('(') => (true, true),
            _ => (false, false),
        };
        if !has_value {
            out.push(Pair {
                key: k,
                value: &rest[..0],
                has_value,
                parenthesised,
                closed: true,
                text: k,
            });
            continue;
        }
        rest = &rest[1..];
        let value;
        let mut closed = true;
        if parenthesised {
            let n = value_len(rest, |c| c == ')');
            if rest[n..].starts_with(")->") {
                // "key(x)->y": the value continues after the parenthesis, as in Open vSwitch.
                let m = n + value_len(&rest[n..], is_sep);
                value = &rest[..m];
                rest = &rest[m..];
            } else {
                value = &rest[..n];
                rest = &rest[n..];
                match rest.strip_prefix(')') {
                    Some(r) => rest = r,
                    None => closed = false,
                }
            }
        } else {
            let n = value_len(rest, is_sep);
            value = &rest[..n];
            rest = &rest[n..];
        }
        let text_len = rest.as_ptr() as usize - start.as_ptr() as usize;
        out.push(Pair {
            key: k,
            value,
            has_value,
            parenthesised,
            closed,
            text: &start[..text_len],
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(s: &str) -> Vec<(&str, &str)> {
        pairs(s).iter().map(|p| (p.key, p.value)).collect()
    }

    #[test]
    fn splits_like_ovs_ofctl() {
        assert_eq!(kv("tcp,tp_dst=80"), vec![("tcp", ""), ("tp_dst", "80")]);
        assert_eq!(
            kv("  tcp tp_dst:80 ,, "),
            vec![("tcp", ""), ("tp_dst", "80")]
        );
        assert_eq!(
            kv("resubmit(,3),output:1"),
            vec![("resubmit", ",3"), ("output", "1")]
        );
        assert_eq!(
            kv("output(port=1,max_len=100) 2"),
            vec![("output", "port=1,max_len=100"), ("2", "")]
        );
        assert_eq!(
            kv("set_field:10.0.0.1->ip_dst,mod_dl_src:00:11:22:33:44:55"),
            vec![
                ("set_field", "10.0.0.1->ip_dst"),
                ("mod_dl_src", "00:11:22:33:44:55")
            ]
        );
        assert_eq!(
            kv("set_field:::1->ipv6_src"),
            vec![("set_field", "::1->ipv6_src")]
        );
        assert_eq!(kv(""), vec![]);
    }

    #[test]
    fn text_covers_the_pair() {
        let p = pairs("a=1, bpf(fw) c");
        assert_eq!(p[0].text, "a=1");
        assert_eq!(p[1].text, "bpf(fw)");
        assert!(p[1].parenthesised && p[1].closed);
        assert_eq!(p[2].text, "c");
        let p = pairs("resubmit(,3,output:1");
        assert!(p[0].parenthesised && !p[0].closed);
    }
}
