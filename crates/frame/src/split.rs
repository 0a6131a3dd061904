//! Split fields (`card.field(name).mount(el)`): one frame per field, all of one card in one
//! group. What the field frames of a group say to each other, and how the leader (the number
//! frame) collects the other fields' values when the page asks it to tokenize. Pure logic; the
//! DOM layer sends these messages on the group's `BroadcastChannel` (`af-<group>`), which only
//! documents of the vault's own origin (and, with storage partitioning, under the same top-level
//! site) can open, never the merchant page. See `docs/split-fields.md`.

#[allow(unused_imports)]
use crate::prelude::*;

use card::Brand;
use zeroize::Zeroizing;

use crate::model::Model;
use crate::protocol::{Field, FieldOptions};

/// How long the leader waits for the other field frames' values before it fails with the first
/// missing field's `incomplete_*` code (a field frame never mounted, or destroyed).
pub const COLLECT_TIMEOUT_MS: i32 = 1000;

/// A frame's place in a split card, from its URL fragment (`field=…&group=…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitParams {
    /// The one field this frame shows.
    pub field: Field,
    /// The card's group id (16–64 characters of `[A-Za-z0-9_-]`, like a channel).
    pub group: String,
}

impl SplitParams {
    /// The name of the group's `BroadcastChannel`.
    pub fn channel_name(&self) -> String {
        ["af-", &self.group].concat()
    }

    /// The leader (the number frame) tokenizes; the others answer its `collect`.
    pub fn is_leader(&self) -> bool {
        self.field == Field::Number
    }
}

/// A message between the field frames of one group. On the wire a plain object
/// `{t, n?, f?, x?}` (type as a number, nonce, field, text; numbers rather than names keep the
/// reader small); see [`Peer::parts`] and [`Peer::decode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A field frame started; the number frame answers with [`Peer::Brand`].
    Hello,
    /// The brand the number frame detected (`None`: unknown), for the CVC's length and placeholder.
    Brand(Option<Brand>),
    /// The leader asks every field frame for its value (at tokenize time only).
    Collect { nonce: String },
    /// A field frame's answer to [`Peer::Collect`] with the same nonce.
    Value { nonce: String, field: Field, value: Zeroizing<String> },
    /// `from` was completed by typing: the next field's frame takes the focus.
    Advance { from: Field },
    /// Tokenize failed on `field` (its frame takes the focus); every frame shows its error.
    Failed { field: Option<Field> },
    /// A token was made: the CVC frame empties the CVC (field and memory).
    Tokenized,
}

impl Peer {
    /// `(t, n, f, x)`: the wire type (0 `hello`, 1 `brand`, 2 `collect`, 3 `value`, 4 `advance`,
    /// 5 `failed`, 6 `tokenized`), nonce, field id and text of the message.
    pub fn parts(&self) -> (u32, Option<&str>, Option<Field>, Option<&str>) {
        match self {
            Peer::Hello => (0, None, None, None),
            Peer::Brand(brand) => (1, None, None, brand.map(Brand::id)),
            Peer::Collect { nonce } => (2, Some(nonce), None, None),
            Peer::Value { nonce, field, value } => (3, Some(nonce), Some(*field), Some(value.as_str())),
            Peer::Advance { from } => (4, None, Some(*from), None),
            Peer::Failed { field } => (5, None, *field, None),
            Peer::Tokenized => (6, None, None, None),
        }
    }

    /// The inverse of [`Peer::parts`]; `None` for anything malformed (unknown type, missing
    /// nonce or field, a field id or brand that does not exist).
    pub fn decode(kind: u32, nonce: Option<String>, field: Option<&str>, text: Option<String>) -> Option<Peer> {
        let field = match field {
            Some(id) => Some(Field::from_id(id)?),
            None => None,
        };
        let nonce = nonce.filter(|n| !n.is_empty() && n.len() <= 64);
        Some(match kind {
            0 => Peer::Hello,
            1 => Peer::Brand(match text {
                Some(id) => Some(Brand::from_id(&id)?),
                None => None,
            }),
            2 => Peer::Collect { nonce: nonce? },
            3 => Peer::Value { nonce: nonce?, field: field?, value: Zeroizing::new(text?) },
            4 => Peer::Advance { from: field? },
            5 => Peer::Failed { field },
            6 => Peer::Tokenized,
            _ => return None,
        })
    }
}

/// The field whose frame takes the focus when `from` is completed by typing.
pub fn next(from: Field) -> Option<Field> {
    match from {
        Field::Number => Some(Field::Expiry),
        Field::Expiry => Some(Field::Cvc),
        Field::Cvc | Field::Name | Field::PostalCode => None,
    }
}

/// The error code of a field that has no value at all.
pub fn incomplete(field: Field) -> &'static str {
    match field {
        Field::Number => "incomplete_number",
        Field::Expiry => "incomplete_expiry",
        Field::Cvc => "incomplete_cvc",
        Field::Name => "incomplete_name",
        Field::PostalCode => "incomplete_postal_code",
    }
}

/// The leader's collection of one tokenize: the whole card as one [`Model`], filled as the field
/// frames answer (values zeroized when replaced or dropped), and which fields answered.
pub struct Collect {
    nonce: String,
    model: Model,
    /// Bit [`Field::index`] set: that field's value is in.
    got: u8,
}

impl Collect {
    /// Starts a collection under a fresh random `nonce`, with the leader's own number; waits for
    /// the expiry, the CVC and the optional fields `options` enables. `today` is the reference
    /// month for the expiry.
    pub fn new(nonce: String, number: &str, options: FieldOptions, today: card::YearMonth) -> Collect {
        let mut model = Model::new(options, today);
        model.set_value(Field::Number, number.to_owned());
        model.mark_submitted();
        Collect { nonce, model, got: 1 << Field::Number.index() }
    }

    /// The nonce the field frames must answer with.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// Takes a field frame's answer; false (and the value dropped, zeroized) when the nonce is
    /// not this collection's, the field is not wanted or it already answered.
    pub fn accept(&mut self, nonce: &str, field: Field, mut value: Zeroizing<String>) -> bool {
        let bit = 1 << field.index();
        if nonce != self.nonce || !self.model.enabled(field) || self.got & bit != 0 {
            return false;
        }
        self.got |= bit;
        // Moved out, not copied: what stays behind is empty.
        self.model.set_value(field, core::mem::take(&mut *value));
        true
    }

    /// The first wanted field (in document order) that has not answered.
    pub fn missing(&self) -> Option<Field> {
        self.model.fields().find(|f| self.got & (1 << f.index()) == 0)
    }

    /// The whole card, to validate and build the request body exactly as the single frame does
    /// ([`Model::card`], [`Model::token_request_body`]).
    pub fn model(&self) -> &Model {
        &self.model
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> card::YearMonth {
        card::YearMonth::new(2026, 11).unwrap()
    }

    #[test]
    fn peer_messages_round_trip_and_malformed_ones_are_refused() {
        let all = [
            Peer::Hello,
            Peer::Brand(Some(Brand::Amex)),
            Peer::Brand(None),
            Peer::Collect { nonce: "n1".into() },
            Peer::Value { nonce: "n1".into(), field: Field::Cvc, value: Zeroizing::new("737".into()) },
            Peer::Advance { from: Field::Number },
            Peer::Failed { field: Some(Field::Expiry) },
            Peer::Failed { field: None },
            Peer::Tokenized,
        ];
        for peer in all {
            let (t, n, f, x) = peer.parts();
            let back = Peer::decode(t, n.map(str::to_owned), f.map(Field::id), x.map(str::to_owned));
            assert_eq!(back.as_ref(), Some(&peer), "{t}");
            assert!(t <= 6);
        }
        for (t, n, f, x) in [
            (7, None, None, None),
            (2, None, None, None),
            (2, Some("x".repeat(65)), None, None),
            (3, Some("n1".to_owned()), Some("pin"), Some("1".to_owned())),
            (3, Some("n1".to_owned()), None, Some("1".to_owned())),
            (3, Some("n1".to_owned()), Some("cvc"), None),
            (1, None, None, Some("nope".to_owned())),
            (4, None, None, None),
        ] {
            assert_eq!(Peer::decode(t, n, f, x), None, "{t}");
        }
    }

    #[test]
    fn the_leader_collects_each_wanted_field_once_under_its_nonce() {
        let options = FieldOptions { name: true, postal_code: false };
        let mut c = Collect::new("nonce-1".into(), "4242 4242 4242 4242", options, today());
        assert_eq!(c.missing(), Some(Field::Expiry));
        assert!(!c.accept("other", Field::Expiry, Zeroizing::new("12 / 30".into())), "a stale nonce");
        assert!(!c.accept("nonce-1", Field::Number, Zeroizing::new("4000 0000 0000 0002".into())), "a second number");
        assert!(!c.accept("nonce-1", Field::PostalCode, Zeroizing::new("12345".into())), "not enabled");
        assert!(c.accept("nonce-1", Field::Expiry, Zeroizing::new("12 / 30".into())));
        assert!(!c.accept("nonce-1", Field::Expiry, Zeroizing::new("01 / 31".into())), "answered already");
        assert!(c.accept("nonce-1", Field::Cvc, Zeroizing::new("737".into())));
        assert_eq!(c.missing(), Some(Field::Name));
        assert_eq!(c.model().card().err(), Some((Field::Name, "incomplete_name")));
        assert!(c.accept("nonce-1", Field::Name, Zeroizing::new("Zoë Q".into())));
        assert_eq!(c.missing(), None);
        let model = c.model();
        let card = model.card().unwrap();
        let body: serde_json::Value = serde_json::from_str(&model.token_request_body(&card)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"card":{"number":"4242424242424242","exp_month":12,"exp_year":2030,
                "cvc":"737","name":"Zoë Q"}}),
            "the same body as the single frame's"
        );
    }

    #[test]
    fn a_collected_card_is_validated_like_the_single_frame() {
        let mut c = Collect::new("n".into(), "3782 822463 10005", FieldOptions::default(), today());
        c.accept("n", Field::Expiry, Zeroizing::new("12 / 30".into()));
        c.accept("n", Field::Cvc, Zeroizing::new("737".into()));
        assert_eq!(c.model().card().err(), Some((Field::Cvc, "incomplete_cvc")), "amex wants 4 digits");
        let mut c = Collect::new("n".into(), "", FieldOptions::default(), today());
        c.accept("n", Field::Expiry, Zeroizing::new("12 / 30".into()));
        c.accept("n", Field::Cvc, Zeroizing::new("737".into()));
        assert_eq!(c.model().card().err(), Some((Field::Number, "incomplete_number")));
    }

    #[test]
    fn focus_moves_number_expiry_cvc_and_codes_name_every_field() {
        assert_eq!(next(Field::Number), Some(Field::Expiry));
        assert_eq!(next(Field::Expiry), Some(Field::Cvc));
        assert_eq!(next(Field::Cvc), None);
        for field in Field::ALL {
            assert!(crate::locale::ERROR_CODES.contains(&incomplete(field)), "{field:?}");
        }
        let p = SplitParams { field: Field::Number, group: "g".repeat(32) };
        assert!(p.is_leader() && p.channel_name().starts_with("af-g"));
    }
}
