//! Recovery codes: ten single-use codes shown once at TOTP enrolment, stored as SHA-256 hashes
//! (each code carries 80 random bits, so a fast hash is enough).

use crate::secret::{RandomError, Secret, random_fill, sha256_hex};
use crate::totp::base32;

/// Codes issued per enrolment.
pub const COUNT: usize = 10;

/// Normalises a presented code: lower case, without spaces or dashes.
fn normalise(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

/// Fresh codes (`xxxx-xxxx-xxxx-xxxx`, base32) and their hashes.
///
/// # Errors
/// [`RandomError`] if the system generator fails.
pub fn generate() -> Result<(Vec<Secret>, Vec<String>), RandomError> {
    let mut codes = Vec::with_capacity(COUNT);
    let mut hashes = Vec::with_capacity(COUNT);
    for _ in 0..COUNT {
        let mut raw = [0u8; 10];
        random_fill(&mut raw)?;
        let text = base32(&raw).to_lowercase();
        let grouped: Vec<String> = text.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        let code = Secret::new(grouped.join("-"));
        hashes.push(sha256_hex(normalise(code.expose()).as_bytes()));
        codes.push(code);
    }
    Ok((codes, hashes))
}

/// Removes the code's hash from `hashes` if present; `true` if it was (the code is spent).
pub fn consume(hashes: &mut Vec<String>, presented: &str) -> bool {
    let normal = normalise(presented);
    if normal.len() != 16 {
        return false;
    }
    let hash = sha256_hex(normal.as_bytes());
    let before = hashes.len();
    hashes.retain(|h| h != &hash);
    hashes.len() < before
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_works_once() -> Result<(), RandomError> {
        let (codes, mut hashes) = generate()?;
        assert_eq!(codes.len(), COUNT);
        let first = codes[0].expose().to_owned();
        assert_eq!(first.len(), 19, "{first}");
        assert!(consume(&mut hashes, &first.to_uppercase().replace('-', " ")));
        assert!(!consume(&mut hashes, &first));
        assert_eq!(hashes.len(), COUNT - 1);
        assert!(!consume(&mut hashes, "not-a-code"));
        Ok(())
    }
}
