//! Localised text of the frame: labels, placeholders and error messages.
//!
//! Pure data and a tiny negotiation function; no I/O. The DOM layer picks a table with
//! [`Locale::negotiate`] from the loader's `locale` option or the browser's languages.
//!
//! Only English is compiled into the WASM: the other eighteen tables are
//! `static/frame/locale-<lang>.json` (written from the tables below, which native builds keep:
//! a test checks the files against them), fetched by the frame from the vault when a locale
//! needs one and handed to [`register`]. Until then [`Locale::text`] answers with English.

#[allow(unused_imports)]
use crate::prelude::*;
use once_cell::race::OnceBox;

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
    /// Arabic (right-to-left).
    Ar,
    /// Hebrew (right-to-left).
    He,
    /// Chinese (Simplified).
    Zh,
    /// Korean.
    Ko,
    /// Polish.
    Pl,
    /// Swedish.
    Sv,
    /// Danish.
    Da,
    /// Finnish.
    Fi,
    /// Norwegian Bokmål (also `no` and `nn`).
    Nb,
    /// Turkish.
    Tr,
    /// Russian.
    Ru,
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
    pub const ALL: [Locale; 19] = [
        Locale::En,
        Locale::De,
        Locale::Fr,
        Locale::Es,
        Locale::It,
        Locale::Nl,
        Locale::Pt,
        Locale::Ja,
        Locale::Ar,
        Locale::He,
        Locale::Zh,
        Locale::Ko,
        Locale::Pl,
        Locale::Sv,
        Locale::Da,
        Locale::Fi,
        Locale::Nb,
        Locale::Tr,
        Locale::Ru,
    ];

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
            Locale::Ar => "ar",
            Locale::He => "he",
            Locale::Zh => "zh",
            Locale::Ko => "ko",
            Locale::Pl => "pl",
            Locale::Sv => "sv",
            Locale::Da => "da",
            Locale::Fi => "fi",
            Locale::Nb => "nb",
            Locale::Tr => "tr",
            Locale::Ru => "ru",
        }
    }

    /// Whether the language is written right to left (the frame's document is then `dir="rtl"`;
    /// the card number, expiry and CVC stay left to right).
    pub fn is_rtl(self) -> bool {
        matches!(self, Locale::Ar | Locale::He)
    }

    /// Matches a BCP 47 tag (`"de-CH"`, `"pt_BR"`, `"JA"`) by its primary language subtag;
    /// Norwegian `no` and `nn` read Bokmål, the old Hebrew code `iw` Hebrew.
    pub fn from_tag(tag: &str) -> Option<Locale> {
        // By bytes, not `str::split`: its `char` searcher costs WASM.
        let end = tag.bytes().position(|b| b == b'-' || b == b'_').unwrap_or(tag.len());
        let primary = tag.get(..end).unwrap_or_default();
        let alias = |code: &str| primary.eq_ignore_ascii_case(code);
        if alias("no") || alias("nn") {
            return Some(Locale::Nb);
        }
        if alias("iw") {
            return Some(Locale::He);
        }
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
            Locale::Ar => &AR,
            Locale::He => &HE,
            Locale::Zh => &ZH,
            Locale::Ko => &KO,
            Locale::Pl => &PL,
            Locale::Sv => &SV,
            Locale::Da => &DA,
            Locale::Fi => &FI,
            Locale::Nb => &NB,
            Locale::Tr => &TR,
            Locale::Ru => &RU,
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
        LOADED.get(self as usize)?.get()
    }
}

/// Tables loaded at run time, by [`Locale`] index (at most one per locale: [`register`] keeps the
/// first). A `static` rather than a `thread_local!`, which `no_std` does not have.
static LOADED: [OnceBox<Text>; Locale::ALL.len()] = [const { OnceBox::new() }; Locale::ALL.len()];

/// Makes a loaded table the text of `locale`. The table lives for the rest of the page (it is
/// leaked: at most eighteen tables of a few hundred bytes, one per locale, ever); a second table
/// for the same locale is ignored.
pub fn register(locale: Locale, text: Text) {
    if locale == Locale::En || locale.loaded().is_some() {
        return;
    }
    if let Some(slot) = LOADED.get(locale as usize) {
        // Err: a table was set in between; the first one stays.
        let _ = slot.set(Box::new(text));
    }
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

#[cfg(not(target_arch = "wasm32"))]
static AR: Text = Text {
    lang: "ar",
    number_label: "رقم البطاقة",
    expiry_label: "تاريخ الانتهاء",
    cvc_label: "رمز الأمان",
    name_label: "الاسم على البطاقة",
    postal_label: "الرمز البريدي",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "شهر / سنة",
    name_placeholder: "الاسم الكامل",
    errors: [
        "رقم البطاقة غير صالح.",
        "رقم البطاقة غير مكتمل.",
        "نوع البطاقة هذا غير مدعوم.",
        "يحتوي رقم البطاقة على أحرف غير صالحة.",
        "تاريخ انتهاء البطاقة غير مكتمل.",
        "شهر انتهاء البطاقة غير صالح.",
        "سنة انتهاء البطاقة غير صالحة.",
        "انتهت صلاحية البطاقة.",
        "سنة انتهاء البطاقة بعيدة جدًا في المستقبل.",
        "رمز أمان البطاقة غير مكتمل.",
        "رمز أمان البطاقة غير صالح.",
        "أدخل الاسم المكتوب على البطاقة.",
        "الرمز البريدي غير مكتمل.",
        "تعذّرت معالجة البطاقة. يُرجى المحاولة مرة أخرى.",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static HE: Text = Text {
    lang: "he",
    number_label: "מספר כרטיס",
    expiry_label: "תוקף",
    cvc_label: "קוד אבטחה",
    name_label: "השם על הכרטיס",
    postal_label: "מיקוד",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "חודש / שנה",
    name_placeholder: "שם מלא",
    errors: [
        "מספר הכרטיס אינו תקין.",
        "מספר הכרטיס אינו שלם.",
        "סוג כרטיס זה אינו נתמך.",
        "מספר הכרטיס מכיל תווים לא חוקיים.",
        "תאריך התוקף אינו שלם.",
        "חודש התוקף אינו תקין.",
        "שנת התוקף אינה תקינה.",
        "פג תוקף הכרטיס.",
        "שנת התוקף רחוקה מדי בעתיד.",
        "קוד האבטחה אינו שלם.",
        "קוד האבטחה אינו תקין.",
        "יש להזין את השם שעל הכרטיס.",
        "המיקוד אינו שלם.",
        "לא ניתן היה לעבד את הכרטיס. יש לנסות שוב.",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static ZH: Text = Text {
    lang: "zh",
    number_label: "卡号",
    expiry_label: "有效期",
    cvc_label: "安全码",
    name_label: "持卡人姓名",
    postal_label: "邮政编码",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "月 / 年",
    name_placeholder: "姓名",
    errors: [
        "卡号无效。",
        "卡号不完整。",
        "不支持此卡组织。",
        "卡号包含无效字符。",
        "有效期不完整。",
        "有效期月份无效。",
        "有效期年份无效。",
        "此卡已过期。",
        "有效期年份过于久远。",
        "安全码不完整。",
        "安全码无效。",
        "请输入卡上的姓名。",
        "邮政编码不完整。",
        "无法处理此卡，请重试。",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static KO: Text = Text {
    lang: "ko",
    number_label: "카드 번호",
    expiry_label: "만료일",
    cvc_label: "보안 코드",
    name_label: "카드 소유자 이름",
    postal_label: "우편번호",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "MM / YY",
    name_placeholder: "이름",
    errors: [
        "카드 번호가 유효하지 않습니다.",
        "카드 번호가 완전하지 않습니다.",
        "지원되지 않는 카드 브랜드입니다.",
        "카드 번호에 유효하지 않은 문자가 있습니다.",
        "만료일이 완전하지 않습니다.",
        "만료 월이 유효하지 않습니다.",
        "만료 연도가 유효하지 않습니다.",
        "카드가 만료되었습니다.",
        "만료 연도가 너무 먼 미래입니다.",
        "보안 코드가 완전하지 않습니다.",
        "보안 코드가 유효하지 않습니다.",
        "카드에 표시된 이름을 입력하세요.",
        "우편번호가 완전하지 않습니다.",
        "카드를 처리할 수 없습니다. 다시 시도해 주세요.",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static PL: Text = Text {
    lang: "pl",
    number_label: "Numer karty",
    expiry_label: "Data ważności",
    cvc_label: "Kod bezpieczeństwa",
    name_label: "Imię i nazwisko na karcie",
    postal_label: "Kod pocztowy",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "MM / RR",
    name_placeholder: "Imię i nazwisko",
    errors: [
        "Numer karty jest nieprawidłowy.",
        "Numer karty jest niepełny.",
        "Ten rodzaj karty nie jest obsługiwany.",
        "Numer karty zawiera nieprawidłowe znaki.",
        "Data ważności jest niepełna.",
        "Miesiąc ważności jest nieprawidłowy.",
        "Rok ważności jest nieprawidłowy.",
        "Karta straciła ważność.",
        "Rok ważności jest zbyt odległy.",
        "Kod bezpieczeństwa jest niepełny.",
        "Kod bezpieczeństwa jest nieprawidłowy.",
        "Wpisz imię i nazwisko widoczne na karcie.",
        "Kod pocztowy jest niepełny.",
        "Nie udało się przetworzyć karty. Spróbuj ponownie.",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static SV: Text = Text {
    lang: "sv",
    number_label: "Kortnummer",
    expiry_label: "Utgångsdatum",
    cvc_label: "Säkerhetskod",
    name_label: "Namn på kortet",
    postal_label: "Postnummer",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "MM / ÅÅ",
    name_placeholder: "Fullständigt namn",
    errors: [
        "Kortnumret är ogiltigt.",
        "Kortnumret är ofullständigt.",
        "Det här kortmärket stöds inte.",
        "Kortnumret innehåller ogiltiga tecken.",
        "Utgångsdatumet är ofullständigt.",
        "Utgångsmånaden är ogiltig.",
        "Utgångsåret är ogiltigt.",
        "Kortet har gått ut.",
        "Utgångsåret ligger för långt fram i tiden.",
        "Säkerhetskoden är ofullständig.",
        "Säkerhetskoden är ogiltig.",
        "Ange namnet på kortet.",
        "Postnumret är ofullständigt.",
        "Kortet kunde inte behandlas. Försök igen.",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static DA: Text = Text {
    lang: "da",
    number_label: "Kortnummer",
    expiry_label: "Udløbsdato",
    cvc_label: "Sikkerhedskode",
    name_label: "Navn på kortet",
    postal_label: "Postnummer",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "MM / ÅÅ",
    name_placeholder: "Fulde navn",
    errors: [
        "Kortnummeret er ugyldigt.",
        "Kortnummeret er ufuldstændigt.",
        "Dette kortmærke understøttes ikke.",
        "Kortnummeret indeholder ugyldige tegn.",
        "Udløbsdatoen er ufuldstændig.",
        "Udløbsmåneden er ugyldig.",
        "Udløbsåret er ugyldigt.",
        "Kortet er udløbet.",
        "Udløbsåret ligger for langt ude i fremtiden.",
        "Sikkerhedskoden er ufuldstændig.",
        "Sikkerhedskoden er ugyldig.",
        "Indtast navnet på kortet.",
        "Postnummeret er ufuldstændigt.",
        "Kortet kunne ikke behandles. Prøv igen.",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static FI: Text = Text {
    lang: "fi",
    number_label: "Kortin numero",
    expiry_label: "Voimassaolopäivä",
    cvc_label: "Turvakoodi",
    name_label: "Nimi kortissa",
    postal_label: "Postinumero",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "KK / VV",
    name_placeholder: "Koko nimi",
    errors: [
        "Kortin numero on virheellinen.",
        "Kortin numero on puutteellinen.",
        "Tätä korttityyppiä ei tueta.",
        "Kortin numerossa on virheellisiä merkkejä.",
        "Voimassaolopäivä on puutteellinen.",
        "Voimassaolokuukausi on virheellinen.",
        "Voimassaolovuosi on virheellinen.",
        "Kortti on vanhentunut.",
        "Voimassaolovuosi on liian kaukana tulevaisuudessa.",
        "Turvakoodi on puutteellinen.",
        "Turvakoodi on virheellinen.",
        "Anna kortissa oleva nimi.",
        "Postinumero on puutteellinen.",
        "Korttia ei voitu käsitellä. Yritä uudelleen.",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static NB: Text = Text {
    lang: "nb",
    number_label: "Kortnummer",
    expiry_label: "Utløpsdato",
    cvc_label: "Sikkerhetskode",
    name_label: "Navn på kortet",
    postal_label: "Postnummer",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "MM / ÅÅ",
    name_placeholder: "Fullt navn",
    errors: [
        "Kortnummeret er ugyldig.",
        "Kortnummeret er ufullstendig.",
        "Dette kortmerket støttes ikke.",
        "Kortnummeret inneholder ugyldige tegn.",
        "Utløpsdatoen er ufullstendig.",
        "Utløpsmåneden er ugyldig.",
        "Utløpsåret er ugyldig.",
        "Kortet har utløpt.",
        "Utløpsåret er for langt frem i tid.",
        "Sikkerhetskoden er ufullstendig.",
        "Sikkerhetskoden er ugyldig.",
        "Skriv inn navnet på kortet.",
        "Postnummeret er ufullstendig.",
        "Kortet kunne ikke behandles. Prøv igjen.",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static TR: Text = Text {
    lang: "tr",
    number_label: "Kart numarası",
    expiry_label: "Son kullanma tarihi",
    cvc_label: "Güvenlik kodu",
    name_label: "Kart üzerindeki ad",
    postal_label: "Posta kodu",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "AA / YY",
    name_placeholder: "Ad soyad",
    errors: [
        "Kart numarası geçersiz.",
        "Kart numarası eksik.",
        "Bu kart markası desteklenmiyor.",
        "Kart numarası geçersiz karakterler içeriyor.",
        "Son kullanma tarihi eksik.",
        "Son kullanma ayı geçersiz.",
        "Son kullanma yılı geçersiz.",
        "Kartın süresi dolmuş.",
        "Son kullanma yılı çok ileri bir tarih.",
        "Güvenlik kodu eksik.",
        "Güvenlik kodu geçersiz.",
        "Kart üzerindeki adı girin.",
        "Posta kodu eksik.",
        "Kart işlenemedi. Lütfen tekrar deneyin.",
    ],
};

#[cfg(not(target_arch = "wasm32"))]
static RU: Text = Text {
    lang: "ru",
    number_label: "Номер карты",
    expiry_label: "Срок действия",
    cvc_label: "Код безопасности",
    name_label: "Имя на карте",
    postal_label: "Почтовый индекс",
    number_placeholder: NUMBER_PLACEHOLDER,
    expiry_placeholder: "ММ / ГГ",
    name_placeholder: "Полное имя",
    errors: [
        "Неверный номер карты.",
        "Номер карты введён не полностью.",
        "Карты этой платёжной системы не принимаются.",
        "Номер карты содержит недопустимые символы.",
        "Срок действия введён не полностью.",
        "Неверный месяц срока действия.",
        "Неверный год срока действия.",
        "Срок действия карты истёк.",
        "Год срока действия слишком далеко в будущем.",
        "Код безопасности введён не полностью.",
        "Неверный код безопасности.",
        "Введите имя, указанное на карте.",
        "Почтовый индекс введён не полностью.",
        "Не удалось обработать карту. Попробуйте ещё раз.",
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
            (None, &["vi-VN", "it-IT"], Locale::It),
            (None, &["sv-SE", "it-IT"], Locale::Sv),
            (Some("xx"), &["es-MX"], Locale::Es),
            (Some("FR"), &[], Locale::Fr),
            (None, &["zh-CN"], Locale::Zh),
            (None, &["vi-VN"], Locale::En),
            (Some("ar-EG"), &[], Locale::Ar),
            (Some("he"), &[], Locale::He),
            (Some("iw-IL"), &[], Locale::He),
            (Some("no"), &[], Locale::Nb),
            (None, &["nn-NO"], Locale::Nb),
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

    /// Issue 12 asks for at least 16 locales; only Arabic and Hebrew are right to left.
    #[test]
    fn sixteen_or_more_locales_and_which_are_rtl() {
        assert!(Locale::ALL.len() >= 16, "{}", Locale::ALL.len());
        let rtl: Vec<&str> = Locale::ALL.into_iter().filter(|l| l.is_rtl()).map(Locale::lang).collect();
        assert_eq!(rtl, ["ar", "he"]);
        let mut langs: Vec<&str> = Locale::ALL.into_iter().map(Locale::lang).collect();
        langs.sort_unstable();
        langs.dedup();
        assert_eq!(langs.len(), Locale::ALL.len(), "a language listed twice");
    }
}
