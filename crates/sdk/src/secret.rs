//! The merchant's secret API key, as a secret type.

use std::fmt;

use zeroize::Zeroizing;

use crate::error::ConfigError;

/// Longest secret key accepted (the vault's keys are far shorter).
const MAX_KEY_LEN: usize = 255;

/// Whether a key works on test data or live data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// `sk_test_…`: test cards and the sandbox processor only.
    Test,
    /// `sk_live_…`: real cards.
    Live,
}

/// A secret API key (`sk_test_…` or `sk_live_…`).
///
/// Zeroized on drop. `Debug` and `Display` show only the prefix (`sk_test_****`), so a key that
/// ends up in a log line, a panic message or an error report is not disclosed. There is no
/// `Serialize`; the client sends the key only in the `Authorization` header, to the configured
/// base URL.
#[derive(Clone)]
pub struct SecretKey {
    text: Zeroizing<String>,
    mode: Mode,
}

impl SecretKey {
    /// Parses a secret key as the dashboard or the vault's command line showed it.
    ///
    /// # Errors
    /// [`ConfigError::InvalidSecretKey`] when the text is not `sk_test_`/`sk_live_` followed by
    /// `[A-Za-z0-9_]` characters (a publishable `pk_` key is refused: it belongs in the browser).
    /// The error never repeats the text.
    ///
    /// # Example
    /// ```
    /// let key = altafinex::SecretKey::parse("sk_test_51AbCdEf").unwrap();
    /// assert_eq!(format!("{key:?}"), "sk_test_****");
    /// ```
    pub fn parse(text: &str) -> Result<SecretKey, ConfigError> {
        let text = text.trim();
        let (mode, rest) = if let Some(rest) = text.strip_prefix("sk_test_") {
            (Mode::Test, rest)
        } else if let Some(rest) = text.strip_prefix("sk_live_") {
            (Mode::Live, rest)
        } else if text.starts_with("pk_") {
            return Err(ConfigError::InvalidSecretKey("a publishable key (pk_…) cannot be used on the server"));
        } else {
            return Err(ConfigError::InvalidSecretKey("a secret key starts with sk_test_ or sk_live_"));
        };
        if rest.is_empty() || text.len() > MAX_KEY_LEN {
            return Err(ConfigError::InvalidSecretKey("a secret key has 1 to 247 characters after its prefix"));
        }
        if !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ConfigError::InvalidSecretKey("a secret key holds only letters, digits and `_`"));
        }
        Ok(SecretKey { text: Zeroizing::new(text.to_owned()), mode })
    }

    /// Test or live.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The key itself, for the `Authorization` header. Never log it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    fn masked(&self) -> &'static str {
        match self.mode {
            Mode::Test => "sk_test_****",
            Mode::Live => "sk_live_****",
        }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.masked())
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_masks() {
        let cases = [
            ("sk_test_abcDEF123", Some(Mode::Test)),
            ("sk_live_abc_def", Some(Mode::Live)),
            (" sk_test_abc\n", Some(Mode::Test)),
            ("pk_test_abc", None),
            ("sk_test_", None),
            ("sk_prod_abc", None),
            ("sk_test_abc def", None),
            ("sk_test_abc\r\nX-Evil: 1", None),
        ];
        for (text, mode) in cases {
            let parsed = SecretKey::parse(text);
            assert_eq!(parsed.as_ref().ok().map(SecretKey::mode), mode, "{text:?}");
            if let Ok(key) = parsed {
                let shown = format!("{key:?} {key}");
                assert!(!shown.contains("abc"), "{shown}");
            }
        }
    }

    #[test]
    fn errors_never_repeat_the_key() {
        let err = SecretKey::parse("sk_test_secret value").unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("secret value"), "{shown}");
    }
}
