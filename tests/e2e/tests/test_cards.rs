//! `docs/test-cards.md` cannot drift: every error code and decline a merchant must handle has a
//! row, and every row with a card or an input produces its code when run through the code the
//! frame (`frame::model::Model`), the vault (`card::Card::validate`, `card::is_test_card`) and
//! the sandbox acquirer (`vault::processor::sandbox::OUTCOME_CARDS`) use. No browser, no server:
//! `cargo test -p e2e --test test_cards`.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test assertions; cells and slices of documents the test just checked"
)]

use std::collections::BTreeSet;
use std::path::Path;

use frame::model::Model;
use frame::protocol::{Field, FieldOptions};

/// A month the documented expiries are checked against (`01 / 20` expired, `12 / 99` too far).
fn today() -> card::YearMonth {
    card::YearMonth::new(2026, 11).unwrap()
}

fn read(path: &str) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A row of the table: code, "seen as", input cell.
struct Row {
    code: String,
    input: String,
}

fn rows() -> Vec<Row> {
    let doc = read("docs/test-cards.md");
    let mut rows = Vec::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells.len(), 4, "a row of four cells: {line}");
        let code = cells[0].trim_matches('`').to_owned();
        rows.push(Row { code, input: cells[2].to_owned() });
    }
    assert!(rows.len() > 20, "the table was not found: {} rows", rows.len());
    rows
}

/// The backticked `key=value` items of an input cell.
fn items(input: &str) -> Vec<(String, String)> {
    input
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|item| item.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

/// The code the frame reports for the documented field values (the others hold a valid card),
/// after the values were reformatted as the frame does for pasted or autofilled text.
fn frame_code(values: &[(String, String)]) -> Option<&'static str> {
    let mut model = Model::new(FieldOptions { name: true, postal_code: true }, today());
    let defaults = [
        (Field::Number, "4242 4242 4242 4242"),
        (Field::Expiry, "12 / 34"),
        (Field::Cvc, "123"),
        (Field::Name, "Ada Lovelace"),
        (Field::PostalCode, "SW1A 1AA"),
    ];
    for (field, value) in defaults {
        let given = values.iter().find(|(k, _)| Field::from_id(k) == Some(field)).map(|(_, v)| v.as_str());
        let value = given.unwrap_or(value);
        let value = match model.kind(field) {
            Some(kind) => card::reformat(kind, value, value.chars().count()).text,
            None => value.to_owned(),
        };
        model.set_value(field, value);
    }
    model.mark_submitted();
    model.card().err().map(|(_, code)| code)
}

/// The code `POST /v1/tokens` answers for the documented body fields (the others valid).
fn vault_code(values: &[(String, String)]) -> Option<String> {
    let get = |key: &str, default: &'static str| {
        values.iter().find(|(k, _)| k == key).map_or(default.to_owned(), |(_, v)| v.clone())
    };
    let number = get("number", "4242424242424242");
    let year: u16 = get("exp_year", "2034").parse().unwrap();
    let month: u8 = get("exp_month", "12").parse().unwrap();
    let cvc = get("cvc", "123");
    match card::Card::validate(&number, month, year, Some(&cvc), today()) {
        Err(e) => Some(e.code().to_owned()),
        // The vault's test-mode check after validation (`docs/http-api.md`, "Test cards").
        Ok(valid) if !card::is_test_card(valid.pan()) => Some("live_card_in_test_mode".to_owned()),
        Ok(_) => None,
    }
}

/// The sandbox acquirer's decline code for a card (`None`: approved).
fn decline_code(number: &str) -> Option<&'static str> {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    vault::processor::sandbox::OUTCOME_CARDS.iter().find(|(card, _)| *card == digits).map(|(_, code)| code.as_str())
}

#[test]
fn every_row_with_an_input_produces_its_code() {
    let mut checked = 0;
    for row in rows() {
        let input = row.input.as_str();
        let got = if let Some(card) = input.strip_prefix("`payment:") {
            let number = card.split('`').next().unwrap_or_default();
            assert!(
                card::TEST_CARDS.iter().any(|(c, _)| *c == number.replace(' ', "")),
                "{}: {number} is not a published test card",
                row.code
            );
            decline_code(number).map(str::to_owned)
        } else if input.starts_with("`api:") {
            let values: Vec<(String, String)> = items(&input.replace("`api:", "`"));
            vault_code(&values)
        } else if !items(input).is_empty() && items(input).iter().all(|(k, _)| Field::from_id(k).is_some()) {
            frame_code(&items(input)).map(str::to_owned)
        } else {
            continue; // a situation, not an input
        };
        assert_eq!(got.as_deref(), Some(row.code.as_str()), "the input {input} of `{}`", row.code);
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} rows were checked");
}

/// Codes of the TypeScript `ErrorCode` union in `web/loader.d.ts`.
fn loader_codes() -> BTreeSet<String> {
    let dts = read("web/loader.d.ts");
    let start = dts.find("export type ErrorCode").expect("ErrorCode in loader.d.ts");
    let union = &dts[start..];
    let union = &union[..union.find(';').expect("end of ErrorCode")];
    union.split('\'').skip(1).step_by(2).map(str::to_owned).collect()
}

/// `card_error` codes of the vault's error table in `docs/http-api.md` (not the umbrella
/// `card_declined`: its decline codes come from the sandbox acquirer).
fn vault_card_error_codes() -> BTreeSet<String> {
    let doc = read("docs/http-api.md");
    doc.lines()
        .filter(|l| l.starts_with("| 4") && l.contains("| `card_error` |"))
        .flat_map(|l| {
            let code_cell = l.split(" | ").nth(2).unwrap_or_default().to_owned();
            code_cell.split('`').skip(1).step_by(2).map(str::to_owned).collect::<Vec<_>>()
        })
        .filter(|c| c != "card_declined")
        .collect()
}

#[test]
fn every_error_code_and_decline_has_a_row() {
    let documented: BTreeSet<String> = rows().into_iter().map(|r| r.code).collect();
    let mut sources: Vec<(&str, BTreeSet<String>)> = vec![
        ("frame::locale::ERROR_CODES", frame::locale::ERROR_CODES.iter().map(|c| (*c).to_owned()).collect()),
        ("ErrorCode in web/loader.d.ts", loader_codes()),
        ("card_error codes in docs/http-api.md", vault_card_error_codes()),
        (
            "vault::processor::sandbox::OUTCOME_CARDS",
            vault::processor::sandbox::OUTCOME_CARDS.iter().map(|(_, c)| c.as_str().to_owned()).collect(),
        ),
    ];
    // The card crate's reason codes (what `POST /v1/tokens` answers with).
    let reasons: BTreeSet<String> = [
        card::Reason::InvalidNumber,
        card::Reason::IncompleteNumber,
        card::Reason::UnsupportedBrand,
        card::Reason::InvalidCharacters,
        card::Reason::IncompleteExpiry,
        card::Reason::InvalidExpiryMonth,
        card::Reason::InvalidExpiryYear,
        card::Reason::Expired,
        card::Reason::ExpiryTooFar,
        card::Reason::IncompleteCvc,
        card::Reason::InvalidCvc,
    ]
    .iter()
    .map(|r| r.code().to_owned())
    .collect();
    sources.push(("card::Reason", reasons));
    for (source, codes) in sources {
        assert!(!codes.is_empty(), "nothing read from {source}");
        let missing: Vec<&String> = codes.iter().filter(|c| !documented.contains(*c)).collect();
        assert!(missing.is_empty(), "docs/test-cards.md has no row for {missing:?} (from {source})");
    }
}
