//! Card number, expiry and security-code parsing (`Pan::parse`, `Expiry::parse`, `Cvc::parse`,
//! `Card::validate`) against the as-you-type checks the frame runs (`validate_*`).
//!
//! Input: UTF-8 text. The whole text goes through every parser; when it has newlines it is
//! also read as `number \n month \n year \n cvc` for `Card::validate`.

use card::{Brand, Card, Cvc, Expiry, LuhnPolicy, MAX_PAN_LENGTH, MIN_PAN_LENGTH, Pan};

pub fn run(data: &[u8]) {
    let Ok(s) = core::str::from_utf8(data) else { return };
    let today = crate::today();

    // Number: the browser's verdict equals the server's.
    let pan = Pan::parse(s);
    let check = card::validate_number(s);
    assert_eq!(check.state.is_valid(), pan.is_ok(), "validate_number and Pan::parse disagree");
    if let Ok(pan) = &pan {
        let digits = card::digits(s);
        assert_eq!(pan.expose(), digits);
        assert!((MIN_PAN_LENGTH..=MAX_PAN_LENGTH).contains(&digits.len()));
        assert!(pan.brand().has_length(digits.len()));
        assert_eq!(check.detected.brand(), Some(pan.brand()));
        if pan.brand().luhn() == LuhnPolicy::Required {
            assert!(luhn::valid(&digits), "accepted a Luhn-invalid number");
        }
        assert!(digits.ends_with(pan.last4()) && pan.last4().len() == 4);
        assert!(digits.starts_with(pan.bin()));
        // What may be displayed never holds the whole number.
        for shown in [pan.masked(), format!("{pan}"), format!("{pan:?}")] {
            assert!(!card::digits(&shown).contains(pan.expose()), "PAN visible in display form");
            assert!(card::digits(&shown).len() <= 8, "more than 8 digits visible");
        }
    }

    // Expiry: parse + check equals the as-you-type verdict; Display round-trips.
    let expiry = Expiry::parse(s);
    let checked = expiry.and_then(|e| e.check(today));
    assert_eq!(
        card::validate_expiry(s, today).is_valid(),
        checked.is_ok(),
        "validate_expiry and Expiry::parse disagree"
    );
    if let Ok(e) = expiry {
        assert!((1..=12).contains(&e.month()));
        if checked.is_ok() {
            assert_eq!(Expiry::parse(&e.to_string()), Ok(e), "Display of an in-range expiry does not parse back");
        }
    }

    // Security code.
    for brand in [None, Some(Brand::Visa), Some(Brand::Amex)] {
        let cvc = Cvc::parse(s, brand);
        assert_eq!(card::validate_cvc(s, brand).is_valid(), cvc.is_ok());
        if let Ok(cvc) = cvc {
            assert_eq!(cvc.expose(), s.trim());
            assert!(cvc.expose().bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(format!("{cvc:?}"), "Cvc(***)");
            assert_eq!(format!("{cvc}"), "***");
        }
    }

    // The whole card, as the vault receives it.
    let mut parts = s.splitn(4, '\n');
    if let (Some(number), Some(month), Some(year), cvc) = (parts.next(), parts.next(), parts.next(), parts.next()) {
        let (month, year) = (month.trim().parse::<u8>(), year.trim().parse::<u16>());
        if let (Ok(month), Ok(year)) = (month, year)
            && let Ok(card) = Card::validate(number, month, year, cvc, today)
        {
            let pan = Pan::parse(number).unwrap_or_else(|e| panic!("Card accepted a number Pan rejects: {e:?}"));
            assert!(pan == *card.pan());
            assert_eq!(card.brand(), pan.brand());
            assert_eq!(card.expiry().check(today), Ok(()));
            if let Some(c) = cvc {
                assert_eq!(card.cvc().map(Cvc::expose), Some(c.trim()));
            }
            let debug = format!("{card:?}");
            assert!(!card::digits(&debug).contains(pan.expose()), "PAN in Card's Debug");
        }
    }
}
