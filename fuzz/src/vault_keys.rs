//! API-key attribute parsing in the vault (`vault::keys::parse_origin`, `parse_cidr`,
//! `classify`); every origin the vault accepts, the frame's grammar accepts too.
//!
//! Input: UTF-8 text, given to each parser.

use frame::protocol::origin_is_valid;
use ipnet::IpNet;
use vault::keys::{KeyKind, Mode, classify, parse_cidr, parse_origin};

pub fn run(data: &[u8]) {
    let Ok(s) = core::str::from_utf8(data) else { return };

    // Origins: normalised (lower case, trimmed), idempotent, and the same grammar the frame
    // uses for the parent origin it posts to.
    if let Ok(o) = parse_origin(s) {
        assert_eq!(o, o.to_ascii_lowercase());
        assert_eq!(o, o.trim());
        assert_eq!(parse_origin(&o).as_ref(), Ok(&o), "parse_origin not idempotent");
        assert!(origin_is_valid(&o), "frame rejects vault origin {o:?}");
    }
    // Not the converse: since main's stricter parse_origin (DNS names, ports 1-65535), the
    // frame's syntactic check accepts origins the vault refuses, e.g. `https://shop.example:99999`
    // (observation O1 in RELIABILITY.md).

    // CIDRs: truncated to the network, and the printed form parses back to the same block.
    if let Ok(net) = parse_cidr(s) {
        assert_eq!(net, net.trunc());
        assert!(net.contains(&net.network()));
        let printed = net.to_string();
        assert_eq!(parse_cidr(&printed).ok(), Some(net), "{printed} does not parse back");
        assert_eq!(printed.parse::<IpNet>().ok(), Some(net));
    }

    // Key prefixes: only `pk_|sk_` + `test_|live_` + 32 alphanumerics.
    if let Some((kind, mode)) = classify(s) {
        let prefix = match kind {
            KeyKind::Publishable => "pk_",
            KeyKind::Secret => "sk_",
        };
        assert!(s.starts_with(prefix), "{kind:?} without its prefix");
        assert_eq!(s.get(3..8), Some(format!("{}_", mode.as_str()).as_str()));
        assert_eq!(s.len(), 40);
        assert!(s.bytes().skip(8).all(|b| b.is_ascii_alphanumeric()));
    }
    // Every well-formed key built from the input is recognised.
    let random: String = s.chars().filter(char::is_ascii_alphanumeric).chain("0".repeat(32).chars()).take(32).collect();
    for (kind, k) in [(KeyKind::Publishable, "pk"), (KeyKind::Secret, "sk")] {
        for mode in Mode::ALL {
            let key = format!("{k}_{}_{random}", mode.as_str());
            assert_eq!(classify(&key), Some((kind, mode)), "{k}_{}_… not recognised", mode.as_str());
        }
    }
}
