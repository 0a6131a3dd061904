//! The state of the frame's fields and everything derived from it, without a browser.
//!
//! The DOM layer feeds edits in and renders what comes out: field values, the `change`
//! payload, which error to show, when to auto-advance, and the tokenize request body.
//! Values of the number and CVC fields are zeroized when replaced or dropped.

#[allow(unused_imports)]
use crate::prelude::*;

use card::{Brand, Card, Expiry, FieldKind, FieldState, YearMonth};
use zeroize::Zeroizing;

use crate::locale::Text;
use crate::protocol::{ChangeState, ErrorInfo, Field, FieldOptions, FieldStatus, FieldStatuses};

/// Validity of one field, with an error code when it is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Complete and valid.
    Valid,
    /// Could still become valid by typing more.
    Incomplete(&'static str),
    /// Cannot become valid by typing more.
    Invalid(&'static str),
}

impl Check {
    fn from_state(state: FieldState) -> Check {
        match state {
            FieldState::Valid => Check::Valid,
            FieldState::Incomplete(r) => Check::Incomplete(r.code()),
            FieldState::Invalid(r) => Check::Invalid(r.code()),
        }
    }

    /// The error code, if any.
    pub fn code(self) -> Option<&'static str> {
        match self {
            Check::Valid => None,
            Check::Incomplete(c) | Check::Invalid(c) => Some(c),
        }
    }
}

/// The fields' values and interaction flags.
pub struct Model {
    values: [Zeroizing<String>; 5],
    touched: [bool; 5],
    autofilled: [bool; 5],
    focused: Option<Field>,
    submitted: bool,
    options: FieldOptions,
    today: YearMonth,
    /// Split fields: the one field this frame shows (`None`: the whole card).
    only: Option<Field>,
    /// Split fields: the brand the number frame detected (in the other field frames).
    peer_brand: Option<Brand>,
}

impl Model {
    /// Empty fields; `today` is the reference month for expiry checks.
    pub fn new(options: FieldOptions, today: YearMonth) -> Model {
        Model {
            values: Default::default(),
            touched: [false; 5],
            autofilled: [false; 5],
            focused: None,
            submitted: false,
            options,
            today,
            only: None,
            peer_brand: None,
        }
    }

    /// Split fields: this model shows and reports `field` only (`None`: the whole card).
    pub fn set_only(&mut self, field: Option<Field>) {
        self.only = field;
    }

    /// Split fields: the brand the number frame reported (used where the number is not local).
    pub fn set_peer_brand(&mut self, brand: Option<Brand>) {
        self.peer_brand = brand;
    }

    /// The brand last set with [`Model::set_peer_brand`].
    pub fn peer_brand(&self) -> Option<Brand> {
        self.peer_brand
    }

    /// Updates the reference month (the DOM layer reads the clock before tokenizing).
    pub fn set_today(&mut self, today: YearMonth) {
        self.today = today;
    }

    /// Whether a field is shown.
    pub fn enabled(&self, field: Field) -> bool {
        if let Some(only) = self.only {
            return field == only;
        }
        match field {
            Field::Number | Field::Expiry | Field::Cvc => true,
            Field::Name => self.options.name,
            Field::PostalCode => self.options.postal_code,
        }
    }

    /// The enabled fields in document order.
    pub fn fields(&self) -> impl Iterator<Item = Field> + '_ {
        Field::ALL.into_iter().filter(|f| self.enabled(*f))
    }

    /// The current (formatted) value of a field.
    pub fn value(&self, field: Field) -> &str {
        self.values.get(field.index()).map(|v| v.as_str()).unwrap_or_default()
    }

    /// Replaces a field's value; the old value is zeroized.
    pub fn set_value(&mut self, field: Field, value: String) {
        if let Some(slot) = self.values.get_mut(field.index()) {
            *slot = Zeroizing::new(value);
        }
    }

    /// Empties every field and forgets interaction flags.
    pub fn clear(&mut self) {
        for slot in &mut self.values {
            *slot = Zeroizing::new(String::new());
        }
        self.touched = [false; 5];
        self.autofilled = [false; 5];
        self.submitted = false;
    }

    /// Records whether the browser's autofill wrote the field's value (set on autofill,
    /// cleared when the cardholder edits the field or it is cleared).
    pub fn set_autofilled(&mut self, field: Field, autofilled: bool) {
        if let Some(a) = self.autofilled.get_mut(field.index()) {
            *a = autofilled;
        }
    }

    /// Whether the field's value came from the browser's autofill.
    pub fn autofilled(&self, field: Field) -> bool {
        self.autofilled.get(field.index()).copied().unwrap_or(false)
    }

    /// Empties one field (its old value is zeroized) and forgets that it was left or submitted,
    /// so the empty field shows no error until the cardholder leaves it or submits again.
    pub fn clear_field(&mut self, field: Field) {
        self.set_value(field, String::new());
        self.set_autofilled(field, false);
        if let Some(t) = self.touched.get_mut(field.index()) {
            *t = false;
        }
        self.submitted = false;
    }

    /// Records focus moving to `field` (or away from every field).
    pub fn set_focus(&mut self, field: Option<Field>) {
        if let Some(previous) = self.focused {
            if Some(previous) != field {
                if let Some(t) = self.touched.get_mut(previous.index()) {
                    *t = true;
                }
            }
        }
        self.focused = field;
    }

    /// The focused field.
    pub fn focused(&self) -> Option<Field> {
        self.focused
    }

    /// Marks that a submission was attempted: from now on empty fields show their errors.
    pub fn mark_submitted(&mut self) {
        self.submitted = true;
    }

    /// The brand detected from the number typed so far (`None` while unknown or ambiguous).
    pub fn brand(&self) -> Option<Brand> {
        if self.only.is_some_and(|f| f != Field::Number) {
            return self.peer_brand;
        }
        card::validate_number(self.value(Field::Number)).detected.brand()
    }

    /// How the card crate formats a field; `None` for free-text fields.
    pub fn kind(&self, field: Field) -> Option<FieldKind> {
        match field {
            Field::Number => Some(FieldKind::Number),
            Field::Expiry => Some(FieldKind::Expiry),
            Field::Cvc => Some(FieldKind::Cvc(self.brand())),
            Field::Name | Field::PostalCode => None,
        }
    }

    /// Validity of a field's current value.
    pub fn check(&self, field: Field) -> Check {
        let value = self.value(field);
        match field {
            Field::Number => Check::from_state(card::validate_number(value).state),
            Field::Expiry => Check::from_state(card::validate_expiry(value, self.today)),
            Field::Cvc => Check::from_state(card::validate_cvc(value, self.brand())),
            Field::Name => {
                if value.trim().is_empty() {
                    Check::Incomplete("incomplete_name")
                } else {
                    Check::Valid
                }
            }
            Field::PostalCode => {
                let alnum = value.chars().filter(char::is_ascii_alphanumeric).count();
                let allowed = value.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
                if allowed && (3..=10).contains(&alnum) {
                    Check::Valid
                } else if allowed && alnum < 3 {
                    Check::Incomplete("incomplete_postal_code")
                } else {
                    Check::Invalid("incomplete_postal_code")
                }
            }
        }
    }

    /// The error code to show for a field now: invalid values at once, incomplete ones
    /// after the field was left or a submission was attempted.
    pub fn visible_error(&self, field: Field) -> Option<&'static str> {
        let empty = self.value(field).is_empty();
        let touched = self.touched.get(field.index()).copied().unwrap_or(false);
        match self.check(field) {
            Check::Valid => None,
            Check::Invalid(code) if !empty => Some(code),
            Check::Invalid(code) | Check::Incomplete(code) => {
                let left = touched && self.focused != Some(field);
                ((left && !empty) || self.submitted).then_some(code)
            }
        }
    }

    fn status(&self, field: Field) -> FieldStatus {
        let check = self.check(field);
        FieldStatus {
            empty: self.value(field).is_empty(),
            valid: check == Check::Valid,
            potentially_valid: !matches!(check, Check::Invalid(_)),
            focused: self.focused == Some(field),
            autofilled: self.autofilled(field),
        }
    }

    /// The first visible error, localised.
    pub fn first_error(&self, text: &Text) -> Option<ErrorInfo> {
        self.fields().find_map(|field| {
            self.visible_error(field).map(|code| ErrorInfo {
                field: Some(field),
                code: code.to_owned(),
                message: text.message(code).to_owned(),
            })
        })
    }

    /// The `change` payload.
    pub fn state(&self, text: &Text) -> ChangeState {
        let (bin, last4) = self.bin_and_last4().unzip();
        ChangeState {
            brand: self.brand().map(Brand::id),
            bin,
            last4,
            complete: self.fields().all(|f| self.check(f) == Check::Valid),
            empty: self.fields().all(|f| self.value(f).is_empty()),
            fields: FieldStatuses {
                number: self.status(Field::Number),
                expiry: self.status(Field::Expiry),
                cvc: self.status(Field::Cvc),
                name: self.enabled(Field::Name).then(|| self.status(Field::Name)),
                postal_code: self.enabled(Field::PostalCode).then(|| self.status(Field::PostalCode)),
            },
            error: self.first_error(text),
        }
    }

    /// The number's BIN (first 8 digits of a number of 16 or more, else first 6) and last 4,
    /// only once the number is complete and valid.
    fn bin_and_last4(&self) -> Option<(String, String)> {
        if self.check(Field::Number) != Check::Valid {
            return None;
        }
        let digits = card::digits(self.value(Field::Number));
        let bin_len = if digits.len() >= 16 { 8 } else { 6 };
        let bin = digits.get(..bin_len)?.to_owned();
        let last4 = digits.get(digits.len().checked_sub(4)?..)?.to_owned();
        Some((bin, last4))
    }

    /// Where focus moves after an edit completed `field`, if anywhere.
    pub fn advance_from(&self, field: Field) -> Option<Field> {
        if !self.complete_to_advance(field) {
            return None;
        }
        self.fields()
            .skip_while(|f| *f != field)
            .nth(1)
            .filter(|next| matches!(next, Field::Expiry | Field::Cvc) || self.value(*next).is_empty())
    }

    /// Whether typing completed `field` (valid, and at its usual full length), so the focus may
    /// move on.
    pub fn complete_to_advance(&self, field: Field) -> bool {
        if self.check(field) != Check::Valid {
            return false;
        }
        if field == Field::Number {
            // Stop at the usual 16 digits even when the brand allows 19.
            let digits = card::digits(self.value(field)).len();
            let max = self.brand().map_or(16, Brand::max_length);
            if digits != max && digits != 16 {
                return false;
            }
        }
        if field == Field::Cvc {
            let size = self.brand().map_or(3, |b| usize::from(b.security_code().size));
            if self.value(field).len() < size {
                return false;
            }
        }
        true
    }

    /// Re-validates everything for tokenization with the card crate.
    ///
    /// # Errors
    /// The first invalid field with its code (empty fields count as incomplete).
    pub fn card(&self) -> Result<Card, (Field, &'static str)> {
        for field in self.fields() {
            if let Some(code) = self.check(field).code() {
                return Err((field, code));
            }
        }
        let expiry = Expiry::parse(self.value(Field::Expiry)).map_err(|e| (Field::Expiry, e.reason().code()))?;
        Card::validate(
            self.value(Field::Number),
            expiry.month(),
            expiry.year(),
            Some(self.value(Field::Cvc)),
            self.today,
        )
        .map_err(|e| {
            let field = match e.field {
                card::CardField::Number => Field::Number,
                card::CardField::Expiry => Field::Expiry,
                card::CardField::Cvc => Field::Cvc,
            };
            (field, e.code())
        })
    }

    /// The JSON body of `POST /v1/tokens`:
    /// `{"card":{"number","exp_month","exp_year","cvc","name"?,"postal_code"?}}` (name and postal
    /// code when their fields are enabled; both are then required by [`Model::card`]).
    /// Zeroized on drop.
    pub fn token_request_body(&self, card: &Card) -> Zeroizing<String> {
        let mut body = Zeroizing::new(String::with_capacity(160));
        body.push_str("{\"card\":{\"number\":\"");
        body.push_str(card.pan().expose());
        body.push_str("\",\"exp_month\":");
        push_number(&mut body, u32::from(card.expiry().month()));
        body.push_str(",\"exp_year\":");
        push_number(&mut body, u32::from(card.expiry().year()));
        if let Some(cvc) = card.cvc() {
            body.push_str(",\"cvc\":\"");
            body.push_str(cvc.expose());
            body.push('"');
        }
        if self.enabled(Field::Name) {
            body.push_str(",\"name\":");
            push_json_string(&mut body, self.value(Field::Name).trim());
        }
        if self.enabled(Field::PostalCode) {
            body.push_str(",\"postal_code\":");
            push_json_string(&mut body, self.value(Field::PostalCode).trim());
        }
        body.push_str("}}");
        body
    }
}

/// Full-width digits and slash (what a Japanese or Chinese IME types) as ASCII, so the card
/// crate's formatting sees them; everything else unchanged.
pub fn normalize_width(input: &str) -> String {
    input
        .chars()
        .map(|c| match c {
            '\u{FF10}'..='\u{FF19}' => char::from_u32(c as u32 - 0xFF10 + u32::from(b'0')).unwrap_or(c),
            '\u{FF0F}' => '/',
            '\u{3000}' => ' ',
            _ => c,
        })
        .collect()
}

fn push_number(out: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut len = 0;
    loop {
        if let Some(slot) = digits.get_mut(len) {
            *slot = b'0' + (n % 10) as u8;
        }
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in digits.iter().take(len).rev() {
        out.push(char::from(*d));
    }
}

pub(crate) fn push_json_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                out.push_str("\\u00");
                for nibble in [(c as usize) >> 4, (c as usize) & 15] {
                    out.push(HEX.get(nibble).map_or('0', |&h| char::from(h)));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locale::Locale;

    fn today() -> YearMonth {
        YearMonth::new(2026, 11).unwrap()
    }

    fn model(name: bool) -> Model {
        Model::new(FieldOptions { name, postal_code: false }, today())
    }

    #[test]
    fn state_of_a_card_being_typed() {
        let text = Locale::En.text();
        let mut m = model(false);
        let s = m.state(text);
        assert!(s.empty && !s.complete && s.brand.is_none() && s.error.is_none());

        m.set_focus(Some(Field::Number));
        m.set_value(Field::Number, "4242 4242".into());
        let s = m.state(text);
        assert_eq!(s.brand, Some("visa"));
        assert!(s.fields.number.potentially_valid && !s.fields.number.valid);
        assert!(s.fields.number.focused);
        assert!(s.error.is_none(), "incomplete while typing is not an error");
        assert_eq!((s.bin, s.last4), (None, None), "no digits before the number is complete");

        // Leaving an incomplete number shows the error.
        m.set_focus(Some(Field::Expiry));
        let err = m.state(text).error.unwrap();
        assert_eq!((err.field, err.code.as_str()), (Some(Field::Number), "incomplete_number"));
        assert_eq!(err.message, "Your card number is incomplete.");

        m.set_value(Field::Number, "4242 4242 4242 4242".into());
        m.set_value(Field::Expiry, "12 / 30".into());
        m.set_value(Field::Cvc, "123".into());
        let s = m.state(text);
        assert!(s.complete && !s.empty && s.error.is_none());
        // Issue 12: the change payload gains the BIN (8 digits of a 16-digit number) and last 4.
        assert_eq!((s.bin.as_deref(), s.last4.as_deref()), (Some("42424242"), Some("4242")));
        m.set_value(Field::Number, "3782 822463 10005".into());
        let s = m.state(text);
        assert_eq!((s.bin.as_deref(), s.last4.as_deref()), (Some("378282"), Some("0005")), "15 digits: 6-digit BIN");
        m.set_value(Field::Number, "3782 822463 10006".into());
        assert_eq!(m.state(text).bin, None, "not for an invalid number");
        m.set_value(Field::Number, "4242 4242 4242 4242".into());

        m.set_value(Field::Expiry, "01 / 20".into());
        let s = m.state(text);
        assert_eq!(s.error.unwrap().code, "expired");
        assert!(!s.fields.expiry.potentially_valid);
    }

    #[test]
    fn invalid_number_is_shown_at_once_and_submit_shows_empty_fields() {
        let text = Locale::De.text();
        let mut m = model(true);
        m.set_focus(Some(Field::Number));
        m.set_value(Field::Number, "3782 822463 10006".into());
        let err = m.state(text).error.unwrap();
        assert_eq!(err.code, "invalid_number");
        assert_eq!(err.message, "Die Kartennummer ist ungültig.");

        m.set_value(Field::Number, "4242 4242 4242 4242".into());
        assert!(m.state(text).error.is_none());
        assert!(m.state(text).fields.name.is_some());
        m.mark_submitted();
        assert_eq!(m.state(text).error.unwrap().code, "incomplete_expiry");
        assert_eq!(m.card().err(), Some((Field::Expiry, "incomplete_expiry")));
    }

    #[test]
    fn clear_field_empties_one_field_without_an_error() {
        let text = Locale::En.text();
        let mut m = model(false);
        m.set_value(Field::Number, "4242 4242 4242 4242".into());
        m.set_value(Field::Expiry, "12 / 30".into());
        m.set_value(Field::Cvc, "123".into());
        m.set_focus(Some(Field::Cvc));
        m.set_focus(None);
        m.mark_submitted();
        assert!(m.card().is_ok());
        m.clear_field(Field::Cvc);
        assert_eq!(m.value(Field::Cvc), "");
        assert_eq!(m.value(Field::Number), "4242 4242 4242 4242");
        let s = m.state(text);
        assert!(s.fields.cvc.empty && !s.complete);
        assert!(s.error.is_none(), "a cleared CVC is not an error yet: {:?}", s.error);
        assert_eq!(m.card().err(), Some((Field::Cvc, "incomplete_cvc")));
    }

    #[test]
    fn auto_advance() {
        let mut m = model(false);
        m.set_value(Field::Number, "4242 4242 4242 424".into());
        assert_eq!(m.advance_from(Field::Number), None);
        m.set_value(Field::Number, "4242 4242 4242 4242".into());
        assert_eq!(m.advance_from(Field::Number), Some(Field::Expiry));
        m.set_value(Field::Number, "3782 822463 10005".into());
        assert_eq!(m.advance_from(Field::Number), Some(Field::Expiry));
        m.set_value(Field::Expiry, "12 / 3".into());
        assert_eq!(m.advance_from(Field::Expiry), None);
        m.set_value(Field::Expiry, "12 / 30".into());
        assert_eq!(m.advance_from(Field::Expiry), Some(Field::Cvc));
        m.set_value(Field::Cvc, "123".into());
        assert_eq!(m.advance_from(Field::Cvc), None, "amex wants 4 digits");
        m.set_value(Field::Cvc, "1234".into());
        assert_eq!(m.advance_from(Field::Cvc), None, "no field after the CVC");
    }

    #[test]
    fn token_request_body_is_the_vault_shape() {
        let mut m = model(true);
        m.set_value(Field::Number, "4242 4242 4242 4242".into());
        m.set_value(Field::Expiry, "03 / 31".into());
        m.set_value(Field::Cvc, "123".into());
        m.set_value(Field::Name, " Zoë \"Q\" O'Neil\n".into());
        let card = m.card().unwrap();
        let body = m.token_request_body(&card);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"card":{"number":"4242424242424242","exp_month":3,"exp_year":2031,
                "cvc":"123","name":"Zoë \"Q\" O'Neil"}})
        );
        // Issue 12: the postal code was validated, then left out of the body.
        let mut m = Model::new(FieldOptions { name: false, postal_code: true }, today());
        m.set_value(Field::Number, "4242 4242 4242 4242".into());
        m.set_value(Field::Expiry, "03 / 31".into());
        m.set_value(Field::Cvc, "123".into());
        assert_eq!(m.card().err(), Some((Field::PostalCode, "incomplete_postal_code")), "required when enabled");
        m.set_value(Field::PostalCode, "SW1A 1AA ".into());
        let card = m.card().unwrap();
        let json: serde_json::Value = serde_json::from_str(&m.token_request_body(&card)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"card":{"number":"4242424242424242","exp_month":3,"exp_year":2031,
                "cvc":"123","postal_code":"SW1A 1AA"}})
        );
        let mut s = String::new();
        push_json_string(&mut s, "a\u{1}b");
        assert_eq!(s, "\"a\\u0001b\"");
    }

    #[test]
    fn full_width_digits_become_ascii() {
        assert_eq!(normalize_width("４２４２　１２／３０"), "4242 12/30");
        assert_eq!(normalize_width("4242 abc"), "4242 abc");
    }

    #[test]
    fn autofilled_is_reported_per_field_until_cleared() {
        let text = Locale::En.text();
        let mut m = model(false);
        m.set_value(Field::Number, "4242 4242 4242 4242".into());
        m.set_autofilled(Field::Number, true);
        m.set_value(Field::Cvc, "123".into());
        m.set_autofilled(Field::Cvc, true);
        let s = m.state(text);
        assert!(s.fields.number.autofilled && s.fields.cvc.autofilled && !s.fields.expiry.autofilled);
        m.clear_field(Field::Cvc);
        assert!(!m.state(text).fields.cvc.autofilled && m.autofilled(Field::Number));
        m.clear();
        assert!(!m.autofilled(Field::Number));
    }

    #[test]
    fn a_split_field_model_reports_its_own_field_with_the_number_frames_brand() {
        let text = Locale::En.text();
        let mut m = model(false);
        m.set_only(Some(Field::Cvc));
        assert!(m.enabled(Field::Cvc) && !m.enabled(Field::Number) && !m.enabled(Field::Expiry));
        m.set_value(Field::Cvc, "737".into());
        assert!(m.state(text).complete, "complete means this frame's own field");
        m.set_peer_brand(Some(Brand::Amex));
        assert_eq!(m.brand(), Some(Brand::Amex));
        let s = m.state(text);
        assert!(!s.complete && s.fields.cvc.potentially_valid, "amex wants 4 digits");
        assert_eq!((s.brand, s.bin.as_deref()), (Some("amex"), None));
        assert!(!m.complete_to_advance(Field::Cvc));
        let mut n = model(false);
        n.set_only(Some(Field::Number));
        n.set_value(Field::Number, "4242 4242 4242 4242".into());
        assert!(n.complete_to_advance(Field::Number));
        assert_eq!(n.advance_from(Field::Number), None, "the next field is in another frame");
        assert_eq!(n.state(text).bin.as_deref(), Some("42424242"));
    }

    #[test]
    fn clear_forgets_everything() {
        let mut m = model(false);
        m.set_value(Field::Number, "4242".into());
        m.mark_submitted();
        m.clear();
        let s = m.state(Locale::En.text());
        assert!(s.empty && s.error.is_none());
    }
}
