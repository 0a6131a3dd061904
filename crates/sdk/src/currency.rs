//! ISO 4217 currencies and their minor units.
//!
//! Amounts are always integers in the currency's minor unit (cents for USD, yen for JPY, fils
//! for KWD): `1000` USD is $10.00, `1000` JPY is ¥1,000 and `1000` KWD is 1.000 KD. There are no
//! floats anywhere in this crate.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 4217 currency with its minor-unit exponent.
///
/// Written in JSON as the lowercase code (`"usd"`); parsed in either case.
///
/// # Example
/// ```
/// use altafinex::Currency;
/// let kwd = Currency::parse("KWD").unwrap();
/// assert_eq!(kwd.exponent(), 3);
/// assert_eq!(kwd.format_minor(1234), "1.234");
/// assert_eq!(Currency::JPY.format_minor(1000), "1000");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    exponent: u8,
}

/// Why a currency code was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CurrencyError {
    /// Not three ASCII letters, or not an ISO 4217 code this SDK knows.
    Unknown,
}

impl fmt::Display for CurrencyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CurrencyError::Unknown => f.write_str("not an ISO 4217 currency code"),
        }
    }
}

impl std::error::Error for CurrencyError {}

macro_rules! currencies {
    ($($name:ident = $code:literal / $exp:literal),* $(,)?) => {
        impl Currency {
            $(
                #[doc = concat!("`", $code, "` (", stringify!($exp), " decimal places).")]
                pub const $name: Currency = Currency { code: $code, exponent: $exp };
            )*
        }
        /// Every known currency, sorted by code.
        const TABLE: &[Currency] = &[$(Currency::$name),*];
    };
}

// ISO 4217 active codes (list one, 2025), national currencies and the usual funds codes.
// Exponents other than 2 are the ones that matter: 0 (JPY, KRW, …), 3 (KWD, BHD, …), 4 (CLF, UYW).
currencies! {
    AED = "aed" / 2, AFN = "afn" / 2, ALL = "all" / 2, AMD = "amd" / 2, ANG = "ang" / 2,
    AOA = "aoa" / 2, ARS = "ars" / 2, AUD = "aud" / 2, AWG = "awg" / 2, AZN = "azn" / 2,
    BAM = "bam" / 2, BBD = "bbd" / 2, BDT = "bdt" / 2, BGN = "bgn" / 2, BHD = "bhd" / 3,
    BIF = "bif" / 0, BMD = "bmd" / 2, BND = "bnd" / 2, BOB = "bob" / 2, BOV = "bov" / 2,
    BRL = "brl" / 2, BSD = "bsd" / 2, BTN = "btn" / 2, BWP = "bwp" / 2, BYN = "byn" / 2,
    BZD = "bzd" / 2, CAD = "cad" / 2, CDF = "cdf" / 2, CHE = "che" / 2, CHF = "chf" / 2,
    CHW = "chw" / 2, CLF = "clf" / 4, CLP = "clp" / 0, CNY = "cny" / 2, COP = "cop" / 2,
    COU = "cou" / 2, CRC = "crc" / 2, CUP = "cup" / 2, CVE = "cve" / 2, CZK = "czk" / 2,
    DJF = "djf" / 0, DKK = "dkk" / 2, DOP = "dop" / 2, DZD = "dzd" / 2, EGP = "egp" / 2,
    ERN = "ern" / 2, ETB = "etb" / 2, EUR = "eur" / 2, FJD = "fjd" / 2, FKP = "fkp" / 2,
    GBP = "gbp" / 2, GEL = "gel" / 2, GHS = "ghs" / 2, GIP = "gip" / 2, GMD = "gmd" / 2,
    GNF = "gnf" / 0, GTQ = "gtq" / 2, GYD = "gyd" / 2, HKD = "hkd" / 2, HNL = "hnl" / 2,
    HTG = "htg" / 2, HUF = "huf" / 2, IDR = "idr" / 2, ILS = "ils" / 2, INR = "inr" / 2,
    IQD = "iqd" / 3, IRR = "irr" / 2, ISK = "isk" / 0, JMD = "jmd" / 2, JOD = "jod" / 3,
    JPY = "jpy" / 0, KES = "kes" / 2, KGS = "kgs" / 2, KHR = "khr" / 2, KMF = "kmf" / 0,
    KPW = "kpw" / 2, KRW = "krw" / 0, KWD = "kwd" / 3, KYD = "kyd" / 2, KZT = "kzt" / 2,
    LAK = "lak" / 2, LBP = "lbp" / 2, LKR = "lkr" / 2, LRD = "lrd" / 2, LSL = "lsl" / 2,
    LYD = "lyd" / 3, MAD = "mad" / 2, MDL = "mdl" / 2, MGA = "mga" / 2, MKD = "mkd" / 2,
    MMK = "mmk" / 2, MNT = "mnt" / 2, MOP = "mop" / 2, MRU = "mru" / 2, MUR = "mur" / 2,
    MVR = "mvr" / 2, MWK = "mwk" / 2, MXN = "mxn" / 2, MXV = "mxv" / 2, MYR = "myr" / 2,
    MZN = "mzn" / 2, NAD = "nad" / 2, NGN = "ngn" / 2, NIO = "nio" / 2, NOK = "nok" / 2,
    NPR = "npr" / 2, NZD = "nzd" / 2, OMR = "omr" / 3, PAB = "pab" / 2, PEN = "pen" / 2,
    PGK = "pgk" / 2, PHP = "php" / 2, PKR = "pkr" / 2, PLN = "pln" / 2, PYG = "pyg" / 0,
    QAR = "qar" / 2, RON = "ron" / 2, RSD = "rsd" / 2, RUB = "rub" / 2, RWF = "rwf" / 0,
    SAR = "sar" / 2, SBD = "sbd" / 2, SCR = "scr" / 2, SDG = "sdg" / 2, SEK = "sek" / 2,
    SGD = "sgd" / 2, SHP = "shp" / 2, SLE = "sle" / 2, SOS = "sos" / 2, SRD = "srd" / 2,
    SSP = "ssp" / 2, STN = "stn" / 2, SVC = "svc" / 2, SYP = "syp" / 2, SZL = "szl" / 2,
    THB = "thb" / 2, TJS = "tjs" / 2, TMT = "tmt" / 2, TND = "tnd" / 3, TOP = "top" / 2,
    TRY = "try" / 2, TTD = "ttd" / 2, TWD = "twd" / 2, TZS = "tzs" / 2, UAH = "uah" / 2,
    UGX = "ugx" / 0, USD = "usd" / 2, USN = "usn" / 2, UYI = "uyi" / 0, UYU = "uyu" / 2,
    UYW = "uyw" / 4, UZS = "uzs" / 2, VED = "ved" / 2, VES = "ves" / 2, VND = "vnd" / 0,
    VUV = "vuv" / 0, WST = "wst" / 2, XAF = "xaf" / 0, XCD = "xcd" / 2, XCG = "xcg" / 2,
    XOF = "xof" / 0, XPF = "xpf" / 0, YER = "yer" / 2, ZAR = "zar" / 2, ZMW = "zmw" / 2,
    ZWG = "zwg" / 2,
}

impl Currency {
    /// Looks a code up, in either case (`"usd"`, `"USD"`).
    ///
    /// # Errors
    /// [`CurrencyError::Unknown`] for anything that is not a known ISO 4217 code.
    pub fn parse(code: &str) -> Result<Currency, CurrencyError> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(CurrencyError::Unknown);
        }
        let lower = code.to_ascii_lowercase();
        TABLE
            .binary_search_by(|c| c.code.cmp(lower.as_str()))
            .ok()
            .and_then(|i| TABLE.get(i).copied())
            .ok_or(CurrencyError::Unknown)
    }

    /// The lowercase code, as the API writes it (`"usd"`).
    pub fn code(self) -> &'static str {
        self.code
    }

    /// Digits after the decimal point: 0 for JPY, 2 for USD, 3 for KWD.
    pub fn exponent(self) -> u8 {
        self.exponent
    }

    /// Minor units in one major unit: 1, 100, 1000 or 10000.
    pub fn minor_per_major(self) -> u64 {
        10u64.pow(u32::from(self.exponent))
    }

    /// Formats an amount given in minor units with the currency's decimal places, without
    /// floats: `USD.format_minor(1005) == "10.05"`, `JPY.format_minor(1005) == "1005"`.
    pub fn format_minor(self, amount: u64) -> String {
        let per_major = self.minor_per_major();
        if per_major == 1 {
            return amount.to_string();
        }
        let width = usize::from(self.exponent);
        format!("{}.{:0width$}", amount / per_major, amount % per_major)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.code)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl std::str::FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(s: &str) -> Result<Currency, CurrencyError> {
        Currency::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Currency, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Currency;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ISO 4217 currency code")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Currency, E> {
                Currency::parse(v).map_err(|_| E::custom("unknown currency"))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(TABLE.windows(2).all(|w| w[0].code < w[1].code));
    }

    #[test]
    fn exponents() {
        let cases = [("usd", 2), ("JPY", 0), ("kwd", 3), ("Eur", 2), ("bhd", 3), ("krw", 0), ("clf", 4)];
        for (code, exp) in cases {
            assert_eq!(Currency::parse(code).unwrap().exponent(), exp, "{code}");
        }
        for bad in ["", "us", "usdd", "xxx", "u$d", "zzz", "12a"] {
            assert_eq!(Currency::parse(bad), Err(CurrencyError::Unknown), "{bad}");
        }
    }

    #[test]
    fn formats_without_floats() {
        let cases = [
            (Currency::USD, 0, "0.00"),
            (Currency::USD, 5, "0.05"),
            (Currency::USD, 1005, "10.05"),
            (Currency::JPY, 1005, "1005"),
            (Currency::KWD, 1, "0.001"),
            (Currency::KWD, 12345, "12.345"),
            (Currency::USD, u64::MAX, "184467440737095516.15"),
        ];
        for (currency, amount, shown) in cases {
            assert_eq!(currency.format_minor(amount), shown);
        }
    }

    #[test]
    fn json_is_lowercase_and_either_case_is_read() {
        assert_eq!(serde_json::to_string(&Currency::USD).unwrap(), "\"usd\"");
        assert_eq!(serde_json::from_str::<Currency>("\"JPY\"").unwrap(), Currency::JPY);
        assert!(serde_json::from_str::<Currency>("\"abc\"").is_err());
    }
}
