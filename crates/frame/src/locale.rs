//! Localised text of the frame: labels, placeholders and error messages.
//!
//! Pure data and a tiny negotiation function; no I/O. The DOM layer picks a table with
//! [`Locale::negotiate`] from the loader's `locale` option or the browser's languages.
//!
//! Only English is compiled into the WASM: the other seven tables are
//! `static/frame/locale-<lang>.json` (written from the tables below, which native builds keep:
//! a test checks the files against them), fetched by the frame from the vault when a locale
//! needs one and handed to [`register`]. Until then [`Locale::text`] answers with English.

/// A language the frame speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locale {
    /// English (the fallback).
    En,
    /// German.
    De,
    /// French.
    Fr,
    /// Spanish.
    Es,
    /// Italian.
    It,
    /// Dutch.
    Nl,
    /// Portuguese.
    Pt,
    /// Japanese.
    Ja,
}

/// All text one locale needs.
#[derive(Debug)]
pub struct Text {
    /// `lang` attribute value for the document.
    pub lang: &'static str,
    pub number_label: &'static str,
    pub expiry_label: &'static str,
    pub cvc_label: &'static str,
    pub name_label: &'static str,
    pub postal_label: &'static str,
    pub number_placeholder: &'static str,
    pub expiry_placeholder: &'static str,
    pub name_placeholder: &'static str,
    /// Messages in [`ERROR_CODES`] order.
    pub errors: [&'static str; ERROR_CODES.len()],
}

/// Every error code the frame can show or report, in the order of [`Text::errors`].
/// The first eleven are the card crate's `Reason` codes.
pub const ERROR_CODES: [&str; 14] = [
    "invalid_number",
    "incomplete_number",
    "unsupported_brand",
    "invalid_characters",
    "incomplete_expiry",
    "invalid_expiry_month",
    "invalid_expiry_year",
    "expired",
    "expiry_too_far",
    "incomplete_cvc",
    "invalid_cvc",
    "incomplete_name",
    "incomplete_postal_code",
    "processing_error",
];

impl Text {
    /// The message for an error code; unknown codes get the generic processing error.
    pub fn message(&self, code: &str) -> &'static str {
        let index = ERROR_CODES.iter().position(|c| *c == code).unwrap_or(ERROR_CODES.len() - 1);
        self.errors.get(index).copied().unwrap_or_default()
    }
}

impl Locale {
    /// Every supported locale.
    pub const ALL: [Locale; 8] =
        [Locale::En, Locale::De, Locale::Fr, Locale::Es, Locale::It, Locale::Nl, Locale::Pt, Locale::Ja];

    /// The primary language subtag (`"de"`), also the `lang` of the table.
    pub fn lang(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::De => "de",
            Locale::Fr => "fr",
            Locale::Es => "es",
            Locale::It => "it",
            Locale::Nl => "nl",
            Locale::Pt => "pt",
            Locale::Ja => "ja",
        }
    }

    /// Matches a BCP 47 tag (`"de-CH"`, `"pt_BR"`, `"JA"`) by its primary language subtag.
    pub fn from_tag(tag: &str) -> Option<Locale> {
        let primary = tag.split(['-', '_']).next().unwrap_or_default();
        Locale::ALL.into_iter().find(|l| l.lang().eq_ignore_ascii_case(primary))
    }

    /// The requested locale when supported (`"auto"` or `None` means "ask the browser"),
    /// else the first supported browser language, else English.
    pub fn negotiate<'a>(requested: Option<&str>, browser: impl IntoIterator<Item = &'a str>) -> Locale {
        requested
            .filter(|r| !r.eq_ignore_ascii_case("auto"))
            .and_then(Locale::from_tag)
            .or_else(|| browser.into_iter().find_map(Locale::from_tag))
            .unwrap_or(Locale::En)
    }

    /// The text table of this locale (native builds: compiled in).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn text(self) -> &'static Text {
        match self {
            Locale::En => &EN,
            Locale::De => &DE,
            Locale::Fr => &FR,
            Locale::Es => &ES,
            Locale::It => &IT,
            Locale::Nl => &NL,
            Locale::Pt => &PT,
            Locale::Ja => &JA,
        }
    }

    /// The text table of this locale: English, or a table [`register`]ed after loading it;
    /// English while it is not loaded (yet).
    #[cfg(target_arch = "wasm32")]
    pub fn text(self) -> &'static Text {
        self.loaded().unwrap_or(&EN)
    }

    /// Whether this locale's table is available without loading anything.
    pub fn is_available(self) -> bool {
        cfg!(not(target_arch = "wasm32")) || self == Locale::En || self.loaded().is_some()
    }

    fn loaded(self) -> Option<&'static Text> {
        LOADED.with(|l| l.borrow().iter().find(|(locale, _)| *locale == self).map(|(_, t)| *t))
    }
}

thread_local! {
    /// Tables loaded at run time (at most one per locale: [`register`] keeps the first).
    static LOADED: core::cell::RefCell<Vec<(Locale, &'static Text)>> = const { core::cell::RefCell::new(Vec::new()) };
}

/// Makes a loaded table the text of `locale`. The table lives for the rest of the page (it is
/// leaked: at most seven tables of a few hundred bytes, one per locale, ever); a second table
/// for the same locale is ignored.
pub fn register(locale: Locale, text: Text) {
    if locale == Locale::En || locale.loaded().is_some() {
        return;
    }
    let text: &'static Text = Box::leak(Box::new(text));
    LOADED.with(|l| l.borrow_mut().push((locale, text)));
}

const NUMBER_PLACEHOLDER: &str = "1234 1234 1234 1234";

static EN: Text = Text {
    lang: "en",
    number_label: "Card number",
    expiry_label: "Expiration date",
    cvc_label: "Security code",
    name_label: "Name on card",
    postal_label: "Postal code",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "MM / YY",
    name_placeholder: "Full name",
    errors: [
        "Your card number is invalid.",
        "Your card number is incomplete.",
        "This card brand is not supported.",
        "Your card number contains invalid characters.",
        "Your card's expiration date is incomplete.",
        "Your card's expiration month is invalid.",
        "Your card's expiration year is invalid.",
        "Your card has expired.",
        "Your card's expiration year is too far in the future.",
        "Your card's security code is incomplete.",
        "Your card's security code is invalid.",
        "Enter the name on your card.",
        "Your postal code is incomplete.",
        "Your card could not be processed. Please try again.",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static DE: Text = Text {
    lang: "de",
    number_label: "Kartennummer",
    expiry_label: "Ablaufdatum",
    cvc_label: "Sicherheitscode",
    name_label: "Name auf der Karte",
    postal_label: "Postleitzahl",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "MM / JJ",
    name_placeholder: "Vollständiger Name",
    errors: [
        "Die Kartennummer ist ungültig.",
        "Die Kartennummer ist unvollständig.",
        "Diese Kartenmarke wird nicht unterstützt.",
        "Die Kartennummer enthält ungültige Zeichen.",
        "Das Ablaufdatum ist unvollständig.",
        "Der Ablaufmonat ist ungültig.",
        "Das Ablaufjahr ist ungültig.",
        "Die Karte ist abgelaufen.",
        "Das Ablaufjahr liegt zu weit in der Zukunft.",
        "Der Sicherheitscode ist unvollständig.",
        "Der Sicherheitscode ist ungültig.",
        "Bitte den Namen auf der Karte eingeben.",
        "Die Postleitzahl ist unvollständig.",
        "Die Karte konnte nicht verarbeitet werden. Bitte erneut versuchen.",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static FR: Text = Text {
    lang: "fr",
    number_label: "Numéro de carte",
    expiry_label: "Date d'expiration",
    cvc_label: "Code de sécurité",
    name_label: "Nom sur la carte",
    postal_label: "Code postal",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "MM / AA",
    name_placeholder: "Nom complet",
    errors: [
        "Le numéro de carte est invalide.",
        "Le numéro de carte est incomplet.",
        "Ce type de carte n'est pas accepté.",
        "Le numéro de carte contient des caractères non valides.",
        "La date d'expiration est incomplète.",
        "Le mois d'expiration est invalide.",
        "L'année d'expiration est invalide.",
        "La carte a expiré.",
        "L'année d'expiration est trop lointaine.",
        "Le code de sécurité est incomplet.",
        "Le code de sécurité est invalide.",
        "Saisissez le nom figurant sur la carte.",
        "Le code postal est incomplet.",
        "La carte n'a pas pu être traitée. Veuillez réessayer.",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static ES: Text = Text {
    lang: "es",
    number_label: "Número de tarjeta",
    expiry_label: "Fecha de caducidad",
    cvc_label: "Código de seguridad",
    name_label: "Nombre en la tarjeta",
    postal_label: "Código postal",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "MM / AA",
    name_placeholder: "Nombre completo",
    errors: [
        "El número de tarjeta no es válido.",
        "El número de tarjeta está incompleto.",
        "Este tipo de tarjeta no se admite.",
        "El número de tarjeta contiene caracteres no válidos.",
        "La fecha de caducidad está incompleta.",
        "El mes de caducidad no es válido.",
        "El año de caducidad no es válido.",
        "La tarjeta ha caducado.",
        "El año de caducidad está demasiado lejos en el futuro.",
        "El código de seguridad está incompleto.",
        "El código de seguridad no es válido.",
        "Introduce el nombre que figura en la tarjeta.",
        "El código postal está incompleto.",
        "No se pudo procesar la tarjeta. Inténtalo de nuevo.",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static IT: Text = Text {
    lang: "it",
    number_label: "Numero della carta",
    expiry_label: "Data di scadenza",
    cvc_label: "Codice di sicurezza",
    name_label: "Nome sulla carta",
    postal_label: "CAP",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "MM / AA",
    name_placeholder: "Nome completo",
    errors: [
        "Il numero della carta non è valido.",
        "Il numero della carta è incompleto.",
        "Questo circuito non è supportato.",
        "Il numero della carta contiene caratteri non validi.",
        "La data di scadenza è incompleta.",
        "Il mese di scadenza non è valido.",
        "L'anno di scadenza non è valido.",
        "La carta è scaduta.",
        "L'anno di scadenza è troppo lontano nel futuro.",
        "Il codice di sicurezza è incompleto.",
        "Il codice di sicurezza non è valido.",
        "Inserisci il nome riportato sulla carta.",
        "Il CAP è incompleto.",
        "Impossibile elaborare la carta. Riprova.",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static NL: Text = Text {
    lang: "nl",
    number_label: "Kaartnummer",
    expiry_label: "Vervaldatum",
    cvc_label: "Beveiligingscode",
    name_label: "Naam op kaart",
    postal_label: "Postcode",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "MM / JJ",
    name_placeholder: "Volledige naam",
    errors: [
        "Het kaartnummer is ongeldig.",
        "Het kaartnummer is onvolledig.",
        "Dit kaarttype wordt niet ondersteund.",
        "Het kaartnummer bevat ongeldige tekens.",
        "De vervaldatum is onvolledig.",
        "De vervalmaand is ongeldig.",
        "Het vervaljaar is ongeldig.",
        "De kaart is verlopen.",
        "Het vervaljaar ligt te ver in de toekomst.",
        "De beveiligingscode is onvolledig.",
        "De beveiligingscode is ongeldig.",
        "Vul de naam op de kaart in.",
        "De postcode is onvolledig.",
        "De kaart kon niet worden verwerkt. Probeer het opnieuw.",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static PT: Text = Text {
    lang: "pt",
    number_label: "Número do cartão",
    expiry_label: "Data de validade",
    cvc_label: "Código de segurança",
    name_label: "Nome no cartão",
    postal_label: "Código postal",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "MM / AA",
    name_placeholder: "Nome completo",
    errors: [
        "O número do cartão é inválido.",
        "O número do cartão está incompleto.",
        "Esta bandeira de cartão não é aceita.",
        "O número do cartão contém caracteres inválidos.",
        "A data de validade está incompleta.",
        "O mês de validade é inválido.",
        "O ano de validade é inválido.",
        "O cartão está vencido.",
        "O ano de validade está muito distante no futuro.",
        "O código de segurança está incompleto.",
        "O código de segurança é inválido.",
        "Informe o nome impresso no cartão.",
        "O código postal está incompleto.",
        "Não foi possível processar o cartão. Tente novamente.",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static JA: Text = Text {
    lang: "ja",
    number_label: "カード番号",
    expiry_label: "有効期限",
    cvc_label: "セキュリティコード",
    name_label: "カード名義",
    postal_label: "郵便番号",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "MM / YY",
    name_placeholder: "カード名義",
    errors: [
        "カード番号が無効です。",
        "カード番号が不完全です。",
        "このカードブランドはご利用いただけません。",
        "カード番号に無効な文字が含まれています。",
        "有効期限が不完全です。",
        "有効期限の月が無効です。",
        "有効期限の年が無効です。",
        "カードの有効期限が切れています。",
        "有効期限の年が先すぎます。",
        "セキュリティコードが不完全です。",
        "セキュリティコードが無効です。",
        "カード名義を入力してください。",
        "郵便番号が不完全です。",
        "カードを処理できませんでした。もう一度お試しください。",
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_option_then_browser_then_english() {
        let cases: &[(Option<&str>, &[&str], Locale)] = &[
            (Some("de"), &["fr-FR"], Locale::De),
            (Some("pt-BR"), &[], Locale::Pt),
            (Some("ja_JP"), &[], Locale::Ja),
            (Some("auto"), &["nl-BE", "en"], Locale::Nl),
            (None, &["sv-SE", "it-IT"], Locale::It),
            (Some("xx"), &["es-MX"], Locale::Es),
            (Some("FR"), &[], Locale::Fr),
            (None, &["zh-CN"], Locale::En),
            (None, &[], Locale::En),
        ];
        for (requested, browser, want) in cases {
            let got = Locale::negotiate(*requested, browser.iter().copied());
            assert_eq!(got, *want, "{requested:?} {browser:?}");
        }
    }

    /// The JSON form of a table, as `static/frame/locale-<lang>.json` holds it.
    fn json(t: &Text) -> String {
        let errors: serde_json::Map<String, serde_json::Value> =
            ERROR_CODES.iter().zip(t.errors).map(|(c, m)| ((*c).to_owned(), m.into())).collect();
        let value = serde_json::json!({
            "lang": t.lang,
            "number_label": t.number_label,
            "expiry_label": t.expiry_label,
            "cvc_label": t.cvc_label,
            "name_label": t.name_label,
            "postal_label": t.postal_label,
            "number_placeholder": t.number_placeholder,
            "expiry_placeholder": t.expiry_placeholder,
            "name_placeholder": t.name_placeholder,
            "errors": errors,
        });
        serde_json::to_string_pretty(&value).unwrap() + "\n"
    }

    /// The files the frame fetches equal the tables; `UPDATE_LOCALE_FILES=1` rewrites them.
    #[test]
    fn locale_files_match_the_tables() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../static/frame");
        for locale in Locale::ALL.into_iter().filter(|l| *l != Locale::En) {
            let path = dir.join(format!("locale-{}.json", locale.lang()));
            let want = json(locale.text());
            if std::env::var_os("UPDATE_LOCALE_FILES").is_some() {
                std::fs::write(&path, &want).unwrap();
            }
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(have, want, "{} is stale: UPDATE_LOCALE_FILES=1 cargo test -p frame locale", path.display());
        }
    }

    #[test]
    fn every_locale_has_every_text() {
        for locale in Locale::ALL {
            let t = locale.text();
            for s in [
                t.number_label,
                t.expiry_label,
                t.cvc_label,
                t.name_label,
                t.postal_label,
                t.number_placeholder,
                t.expiry_placeholder,
                t.name_placeholder,
            ] {
                assert!(!s.is_empty(), "{locale:?}");
            }
            for (code, msg) in ERROR_CODES.iter().zip(t.errors) {
                assert!(!msg.is_empty(), "{locale:?} {code}");
                assert_eq!(t.message(code), msg);
            }
            assert_eq!(Locale::from_tag(t.lang), Some(locale));
            assert_eq!(t.lang, locale.lang());
        }
        assert_eq!(Locale::De.text().message("no_such_code"), Locale::De.text().message("processing_error"));
    }
}
