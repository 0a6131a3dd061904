//! The vault's ciphertext envelope (`vault::crypto::DataKey::seal`/`open`,
//! `ciphertext_version`): `0x01 | key_version u32 BE | nonce 12 | ciphertext | tag 16`.
//!
//! Input: 4 bytes key version, 1 byte mutation, 2 bytes position, then the plaintext.
//! The plaintext is sealed, must open to itself, and after the mutation (truncate, flip a
//! bit, change the format byte, append, other binding, other key version, other key, or
//! the input bytes themselves taken as a ciphertext) `open` must fail without panicking.

use vault::crypto::{Binding, CryptoError, DataKey, FORMAT_V1, ciphertext_version};
use vault::secret::Key256;

const BINDING: Binding<'static> = Binding { token_id: "tok_fuzz", merchant: "mer_fuzz", mode: "test", field: "card" };

pub fn run(data: &[u8]) {
    let [v0, v1, v2, v3, mutation, p0, p1, plaintext @ ..] = data else { return };
    let version = u32::from_be_bytes([*v0, *v1, *v2, *v3]);
    let position = usize::from(u16::from_be_bytes([*p0, *p1]));
    let mutation = *mutation;
    let key = Key256::from_bytes([0x5a; 32]);
    let Ok(dk) = DataKey::new(version, &key) else { panic!("DataKey::new failed") };

    // Arbitrary bytes as a ciphertext: never a panic, never a plaintext.
    assert!(dk.open(data, &BINDING).is_err(), "opened a forged ciphertext");
    let parsed = ciphertext_version(data);
    match data {
        [FORMAT_V1, a, b, c, d, ..] => assert_eq!(parsed, Ok(u32::from_be_bytes([*a, *b, *c, *d]))),
        _ => assert_eq!(parsed, Err(CryptoError::Decrypt)),
    }

    let Ok(sealed) = dk.seal(plaintext, &BINDING) else { panic!("seal failed") };
    assert_eq!(sealed.len(), 5 + 12 + plaintext.len() + 16);
    assert_eq!(ciphertext_version(&sealed), Ok(version));
    let opened = dk.open(&sealed, &BINDING).map(|p| p.expose().to_vec());
    assert_eq!(opened.as_deref(), Ok(plaintext), "round trip failed");
    if plaintext.len() >= 8 {
        assert!(!sealed.windows(plaintext.len()).any(|w| w == plaintext), "plaintext visible in the ciphertext");
    }

    let mut bad = sealed.clone();
    let mut other_key = None;
    let mut binding = BINDING;
    let token = format!("{}x", BINDING.token_id);
    match mutation % 8 {
        0 => bad.truncate(position % sealed.len()),
        1 => {
            let i = position % sealed.len();
            if let Some(b) = bad.get_mut(i) {
                *b ^= 1 << (mutation >> 5);
            }
        }
        2 => bad[0] = if mutation == FORMAT_V1 { 0 } else { mutation },
        3 => bad.push(mutation),
        4 => binding.token_id = &token,
        5 => binding.field = "cvc",
        6 => other_key = DataKey::new(version.wrapping_add(1), &key).ok(),
        _ => other_key = DataKey::new(version, &Key256::from_bytes([0xa5; 32])).ok(),
    }
    let opener = other_key.as_ref().unwrap_or(&dk);
    assert!(opener.open(&bad, &binding).is_err(), "modified ciphertext opened (mutation {})", mutation % 8);
}
