//! The per-keystroke path: what the frame runs for every key the cardholder presses.
//! Target: under 1 µs natively (see BENCHMARKS.md).
#![allow(clippy::panic)] // benchmark setup: a panic is a failed run

use card::{Edit, FieldKind, YearMonth, detect, edit, validate_cvc, validate_expiry, validate_number};
use criterion::{Criterion, black_box, criterion_group, criterion_main};

fn keystroke(c: &mut Criterion) {
    let today = YearMonth::new(2026, 11).unwrap_or_else(|e| panic!("{e}"));
    // Typing the last digit of a Visa number: edit + detect + validate.
    c.bench_function("number keystroke (edit + detect + validate)", |b| {
        b.iter(|| {
            let out = edit(FieldKind::Number, black_box("4242 4242 4242 424"), 18..18, Edit::Insert(black_box("2")));
            let check = validate_number(&out.text);
            black_box((out, check))
        })
    });
    // A mid-number insertion in an Amex number.
    c.bench_function("number mid-edit (amex)", |b| {
        b.iter(|| {
            let out = edit(FieldKind::Number, black_box("3782 822463 1005"), 7..7, Edit::Insert(black_box("2")));
            black_box((validate_number(&out.text), out))
        })
    });
    c.bench_function("expiry keystroke", |b| {
        b.iter(|| {
            let out = edit(FieldKind::Expiry, black_box("12 / 3"), 6..6, Edit::Insert(black_box("0")));
            black_box((validate_expiry(&out.text, today), out))
        })
    });
    c.bench_function("cvc keystroke", |b| {
        b.iter(|| {
            let out = edit(FieldKind::Cvc(Some(card::Brand::Amex)), black_box("123"), 3..3, Edit::Insert("4"));
            black_box((validate_cvc(&out.text, Some(card::Brand::Amex)), out))
        })
    });
    c.bench_function("detect (ambiguous 1-digit prefix)", |b| b.iter(|| detect(black_box("6"))));
}

criterion_group!(benches, keystroke);
criterion_main!(benches);
