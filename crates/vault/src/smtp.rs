//! A small SMTP client (RFC 5321) for security-alert emails: plain to a local relay, STARTTLS
//! or implicit TLS (rustls, the web PKI roots) to a real one, optional `AUTH PLAIN` (only over
//! TLS), one text message at a time. Hand-written rather than `lettre` (ARCHITECTURE.md, "Dev
//! Space"): the vault sends one kind of short plain-text message, and this is ~300 lines on
//! crates the vault already has.
//!
//! What it never does: send credentials in the clear, keep a connection open between messages,
//! or put caller text into a header without removing line breaks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No TLS (`smtp://`): loopback relays only.
    Plain,
    /// `STARTTLS` required (`smtp://…?tls=required`).
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Tls,
}

/// Where and how to send: parsed from `--smtp-url`.
#[derive(Clone)]
pub struct SmtpTarget {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Protection.
    pub security: Security,
    /// `AUTH PLAIN` user and password, if any.
    credentials: Option<(String, Zeroizing<String>)>,
}

impl fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("credentials", &self.credentials.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why an SMTP URL or a sending attempt failed (no server text that could echo the message).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmtpError {
    /// The URL is not `smtp://` or `smtps://` with a host.
    BadUrl(&'static str),
    /// Connecting, reading or writing failed (or timed out).
    Io(String),
    /// TLS could not be set up.
    Tls(String),
    /// The server answered a command with an unexpected reply code.
    Rejected {
        /// The command (`MAIL`, `RCPT`, `DATA`…).
        command: &'static str,
        /// The reply code.
        code: u16,
    },
    /// The server does not offer something required (STARTTLS, AUTH PLAIN).
    Unsupported(&'static str),
    /// No recipient was accepted.
    NoRecipients,
}

impl fmt::Display for SmtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadUrl(why) => write!(f, "invalid SMTP URL: {why}"),
            Self::Io(e) => write!(f, "SMTP connection failed: {e}"),
            Self::Tls(e) => write!(f, "SMTP TLS failed: {e}"),
            Self::Rejected { command, code } => write!(f, "SMTP server answered {code} to {command}"),
            Self::Unsupported(what) => write!(f, "SMTP server does not offer {what}"),
            Self::NoRecipients => f.write_str("SMTP server accepted no recipient"),
        }
    }
}

impl std::error::Error for SmtpError {}

impl From<std::io::Error> for SmtpError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e.kind().to_string())
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl SmtpTarget {
    /// Parses `smtp://[user:password@]host[:port][?tls=required]` (port 25; plain only to a
    /// loopback host) or `smtps://[user:password@]host[:port]` (port 465).
    ///
    /// # Errors
    /// [`SmtpError::BadUrl`] saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, SmtpError> {
        let url = url::Url::parse(text).map_err(|_| SmtpError::BadUrl("not a URL"))?;
        let tls_required = url.query_pairs().any(|(k, v)| k == "tls" && v == "required");
        let (security, default_port) = match (url.scheme(), tls_required) {
            ("smtp", false) => (Security::Plain, 25),
            ("smtp", true) => (Security::StartTls, 587),
            ("smtps", _) => (Security::Tls, 465),
            _ => return Err(SmtpError::BadUrl("the scheme must be smtp or smtps")),
        };
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or(SmtpError::BadUrl("no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        if security == Security::Plain && !is_loopback(&host) {
            return Err(SmtpError::BadUrl(
                "plain smtp:// only to a loopback relay; use smtps:// or smtp://…?tls=required",
            ));
        }
        let credentials = if url.username().is_empty() {
            None
        } else {
            let decode = |s: &str| percent_decode(s).ok_or(SmtpError::BadUrl("bad percent-encoding in credentials"));
            Some((decode(url.username())?, Zeroizing::new(decode(url.password().unwrap_or_default())?)))
        };
        if credentials.is_some() && security == Security::Plain {
            return Err(SmtpError::BadUrl("credentials only over TLS"));
        }
        Ok(Self { host, port: url.port().unwrap_or(default_port), security, credentials })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// One plain-text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Envelope and `From:` address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Subject (line breaks removed).
    pub subject: String,
    /// `Message-ID` left part (an alert id).
    pub id: String,
    /// Unix time for the `Date:` header.
    pub date: i64,
    /// Body text (any line endings).
    pub body: String,
}

fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// `Thu, 26 Nov 2026 10:00:00 +0000`.
pub fn rfc5322_date(ts: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let (y, m, d) = devspace::pages::civil_from_days(days);
    let weekday = DAYS.get(usize::try_from(days.rem_euclid(7)).unwrap_or(0)).copied().unwrap_or("Thu");
    let month = MONTHS.get(usize::try_from(m - 1).unwrap_or(0)).copied().unwrap_or("Jan");
    format!("{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} +0000", secs / 3600, secs % 3600 / 60, secs % 60)
}

impl Message {
    /// The message as sent after `DATA`: headers, body with CRLF line endings, lines starting
    /// with `.` doubled (RFC 5321 4.5.2), and the final `.` line. A body that is not ASCII is
    /// sent base64-encoded unless the server takes 8-bit data.
    pub fn to_data(&self, eight_bit: bool) -> String {
        let domain = self.from.rsplit_once('@').map_or("localhost", |(_, d)| d);
        let ascii = self.body.is_ascii();
        let encoding = if ascii {
            "7bit"
        } else if eight_bit {
            "8bit"
        } else {
            "base64"
        };
        let mut out = format!(
            "From: Altafinex Dev Space <{}>\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: <{}@{}>\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {encoding}\r\n\
             Auto-Submitted: auto-generated\r\n\r\n",
            one_line(&self.from),
            one_line(&self.to.join(", ")),
            one_line(&self.subject),
            rfc5322_date(self.date),
            one_line(&self.id),
            one_line(domain),
        );
        let body = if encoding == "base64" {
            let encoded = STANDARD.encode(self.body.as_bytes());
            encoded
                .as_bytes()
                .chunks(76)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            self.body.clone()
        };
        for line in body.replace("\r\n", "\n").replace('\r', "\n").split('\n') {
            if line.starts_with('.') {
                out.push('.');
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str(".\r\n");
        out
    }
}

/// Everything one send may take (connect, TLS, every command).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `message` through `target`.
///
/// # Errors
/// [`SmtpError`]: nothing was delivered (the caller retries later).
pub async fn send(target: &SmtpTarget, message: &Message) -> Result<(), SmtpError> {
    tokio::time::timeout(SEND_TIMEOUT, send_inner(target, message))
        .await
        .map_err(|_| SmtpError::Io("timed out".into()))?
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, SmtpError> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| SmtpError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn tls(host: &str, tcp: TcpStream) -> Result<Box<dyn Io>, SmtpError> {
    let name = ServerName::try_from(host.to_owned()).map_err(|_| SmtpError::Tls("invalid server name".into()))?;
    let stream = tls_connector()?.connect(name, tcp).await.map_err(|e| SmtpError::Tls(e.kind().to_string()))?;
    Ok(Box::new(stream))
}

/// Reads one (possibly multi-line) reply: its code and its lines' text.
async fn reply<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> Result<(u16, Vec<String>), SmtpError> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        // A reply line is at most 512 octets (RFC 5321 4.5.3.1.5); refuse endless ones.
        let n = (&mut *r).take(4096).read_line(&mut line).await?;
        if n == 0 {
            return Err(SmtpError::Io("connection closed".into()));
        }
        let code = line.get(..3).and_then(|c| c.parse::<u16>().ok()).ok_or(SmtpError::Io("malformed reply".into()))?;
        let more = line.as_bytes().get(3) == Some(&b'-');
        lines.push(line.get(4..).unwrap_or_default().trim_end().to_owned());
        if !more {
            return Ok((code, lines));
        }
    }
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    r: &mut BufReader<S>,
    name: &'static str,
    line: &str,
    ok: &[u16],
) -> Result<(u16, Vec<String>), SmtpError> {
    r.get_mut().write_all(line.as_bytes()).await?;
    r.get_mut().write_all(b"\r\n").await?;
    r.get_mut().flush().await?;
    let (code, lines) = reply(r).await?;
    if ok.contains(&code) { Ok((code, lines)) } else { Err(SmtpError::Rejected { command: name, code }) }
}

fn ehlo_name(from: &str) -> String {
    let d = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    if !d.is_empty() && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
        d.to_owned()
    } else {
        "localhost".to_owned()
    }
}

async fn send_inner(target: &SmtpTarget, message: &Message) -> Result<(), SmtpError> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
    let helo = format!("EHLO {}", ehlo_name(&message.from));
    let stream: Box<dyn Io> = match target.security {
        Security::Plain => Box::new(tcp),
        Security::Tls => tls(&target.host, tcp).await?,
        Security::StartTls => {
            let mut r = BufReader::new(tcp);
            expect_greeting(&mut r).await?;
            let (_, caps) = command(&mut r, "EHLO", &helo, &[250]).await?;
            if !caps.iter().any(|c| c.eq_ignore_ascii_case("STARTTLS")) {
                return Err(SmtpError::Unsupported("STARTTLS"));
            }
            command(&mut r, "STARTTLS", "STARTTLS", &[220]).await?;
            // Anything the server sent after its 220 would be read as if it came over TLS
            // (the STARTTLS command-injection attack): refuse it.
            if !r.buffer().is_empty() {
                return Err(SmtpError::Tls("data after STARTTLS".into()));
            }
            tls(&target.host, r.into_inner()).await?
        }
    };
    let mut r = BufReader::new(stream);
    if target.security != Security::StartTls {
        expect_greeting(&mut r).await?;
    }
    let (_, caps) = command(&mut r, "EHLO", &helo, &[250]).await?;
    let eight_bit = caps.iter().any(|c| c.eq_ignore_ascii_case("8BITMIME"));
    if let Some((user, password)) = &target.credentials {
        let plain = caps.iter().any(|c| {
            let up = c.to_ascii_uppercase();
            up.starts_with("AUTH") && up.split([' ', '=']).any(|m| m == "PLAIN")
        });
        if !plain {
            return Err(SmtpError::Unsupported("AUTH PLAIN"));
        }
        let token = Zeroizing::new(STANDARD.encode(format!("\0{user}\0{}", password.as_str())));
        command(&mut r, "AUTH", &format!("AUTH PLAIN {}", token.as_str()), &[235]).await?;
    }
    let body_param = if eight_bit && !message.body.is_ascii() { " BODY=8BITMIME" } else { "" };
    command(&mut r, "MAIL", &format!("MAIL FROM:<{}>{body_param}", one_line(&message.from)), &[250]).await?;
    let mut accepted = 0;
    for to in &message.to {
        match command(&mut r, "RCPT", &format!("RCPT TO:<{}>", one_line(to)), &[250, 251]).await {
            Ok(_) => accepted += 1,
            Err(SmtpError::Rejected { code, .. }) => tracing::warn!(code, "SMTP server refused a recipient"),
            Err(e) => return Err(e),
        }
    }
    if accepted == 0 {
        return Err(SmtpError::NoRecipients);
    }
    command(&mut r, "DATA", "DATA", &[354]).await?;
    r.get_mut().write_all(message.to_data(eight_bit).as_bytes()).await?;
    r.get_mut().flush().await?;
    let (code, _) = reply(&mut r).await?;
    if code != 250 {
        return Err(SmtpError::Rejected { command: "DATA", code });
    }
    // The message is accepted; a failed QUIT changes nothing.
    let _ = command(&mut r, "QUIT", "QUIT", &[221]).await;
    Ok(())
}

async fn expect_greeting<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> Result<(), SmtpError> {
    match reply(r).await? {
        (220, _) => Ok(()),
        (code, _) => Err(SmtpError::Rejected { command: "greeting", code }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = SmtpTarget::parse("smtp://127.0.0.1:2525").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.host.as_str(), t.port, t.security), ("127.0.0.1", 2525, Security::Plain));
        let t = SmtpTarget::parse("smtps://alerts:p%40ss@mail.example.com").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.port, t.security), (465, Security::Tls));
        assert!(!format!("{t:?}").contains("p@ss"));
        let t = SmtpTarget::parse("smtp://mail.example.com?tls=required").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.port, t.security), (587, Security::StartTls));
        for bad in
            ["http://mail.example.com", "smtp://mail.example.com", "smtp://user:pw@127.0.0.1", "smtp://", "not a url"]
        {
            assert!(SmtpTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn data_is_dot_stuffed_with_crlf_and_headers_hold_one_line() {
        let m = Message {
            from: "vault@shop.example".into(),
            to: vec!["a@shop.example".into(), "b@shop.example".into()],
            subject: "Alert\r\nBcc: evil@example.com".into(),
            id: "alr_1".into(),
            date: 1_795_132_800,
            body: "line one\n.starts with a dot\r\nlast".into(),
        };
        let data = m.to_data(false);
        assert!(data.contains("Subject: Alert  Bcc: evil@example.com\r\n"), "{data}");
        assert!(!data.contains("\r\nBcc:"));
        assert!(data.contains("\r\n\r\nline one\r\n..starts with a dot\r\nlast\r\n.\r\n"), "{data}");
        assert!(data.contains("Date: Fri, 20 Nov 2026 00:00:00 +0000\r\n"), "{data}");
        let non_ascii = Message { body: "visa •••• 4242".into(), ..m };
        assert!(non_ascii.to_data(false).contains("Content-Transfer-Encoding: base64"));
        assert!(non_ascii.to_data(true).contains("visa •••• 4242"));
    }

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 +0000");
    }
}
