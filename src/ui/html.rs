//! HTML building blocks for the console's pages: escaping, the page frame with its navigation,
//! and the formats every page shares (money, durations, times). Everything a page prints from
//! data goes through [`esc`]; the content security policy forbids inline script and style, so a
//! page is markup only, with `app.css` and `app.js` beside it.

use std::fmt::Write;

use super::session::Session;

/// Escapes text for HTML element content and double-quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query-string value.
pub fn url_enc(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

const NAV: &[(&str, &str)] = &[
    ("/ui", "Overview"),
    ("/ui/traces", "Traces"),
    ("/ui/live", "Live"),
    ("/ui/spend", "Spend"),
    ("/ui/keys", "Keys & teams"),
    ("/ui/routing", "Routing"),
    ("/ui/modules", "Modules"),
    ("/ui/audit", "Audit"),
];

/// A whole page: head, navigation (with `active` marked), the session's flash message, `body`.
pub fn page(title: &str, active: &str, session: Option<&Session>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Stockyard</title><link rel=\"stylesheet\" href=\"/ui/assets/app.css\">\
         <script src=\"/ui/assets/app.js\" defer></script></head><body>",
        esc(title)
    );
    if let Some(session) = session {
        out.push_str("<header><span class=\"brand\">Stockyard</span><nav>");
        for (href, label) in NAV {
            let class = if *href == active {
                " class=\"active\""
            } else {
                ""
            };
            let _ = write!(out, "<a href=\"{href}\"{class}>{label}</a>");
        }
        let role = if session.read_only {
            " <span class=\"badge\">read-only</span>"
        } else {
            ""
        };
        let _ = write!(
            out,
            "</nav><form method=\"post\" action=\"/ui/logout\" class=\"logout\">{}\
             <span class=\"who\">{}{role}</span><button>Log out</button></form></header>",
            csrf_field(session),
            esc(&session.actor)
        );
        if let Some(flash) = &session.flash {
            let class = if flash.ok { "flash ok" } else { "flash err" };
            let _ = write!(
                out,
                "<p class=\"{class}\" id=\"flash\">{}</p>",
                esc(&flash.text)
            );
        }
    }
    let _ = write!(
        out,
        "<main><h1>{}</h1>{body}</main></body></html>",
        esc(title)
    );
    out
}

/// The hidden field every form that changes something carries.
pub fn csrf_field(session: &Session) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&session.csrf)
    )
}

/// A form that posts to `action` with the CSRF field, around `inner`; disabled for a read-only
/// session (the server refuses it anyway).
pub fn form(session: &Session, action: &str, class: &str, inner: &str) -> String {
    let disabled = if session.read_only {
        "<fieldset disabled>"
    } else {
        "<fieldset>"
    };
    format!(
        "<form method=\"post\" action=\"{}\" class=\"{class}\">{}{disabled}{inner}</fieldset></form>",
        esc(action),
        csrf_field(session)
    )
}

/// Nano-dollars as dollars: cents above a dollar, more digits below.
pub fn usd(nanos: i64) -> String {
    let dollars = nanos as f64 / 1e9;
    if dollars.abs() >= 1.0 {
        format!("${dollars:.2}")
    } else if nanos == 0 {
        "$0".into()
    } else {
        format!("${dollars:.6}")
    }
}

/// Microseconds as a readable duration.
pub fn dur_us(us: i64) -> String {
    if us >= 10_000_000 {
        format!("{:.1} s", us as f64 / 1e6)
    } else if us >= 1_000 {
        format!("{:.0} ms", us as f64 / 1e3)
    } else {
        format!("{us} µs")
    }
}

pub fn opt_dur(us: Option<i64>) -> String {
    us.map(dur_us).unwrap_or_else(|| "–".into())
}

/// Epoch milliseconds as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn ts(ms: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return ms.to_string();
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A thousands-separated count.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

pub fn opt(text: Option<&str>) -> String {
    esc(text.unwrap_or("–"))
}

/// `<select name=NAME>` with an empty "any" choice and `values`, `selected` marked.
pub fn select(name: &str, any: &str, values: &[String], selected: Option<&str>) -> String {
    let mut out =
        format!("<select name=\"{name}\" id=\"f-{name}\"><option value=\"\">{any}</option>");
    for v in values {
        let sel = if Some(v.as_str()) == selected {
            " selected"
        } else {
            ""
        };
        let _ = write!(out, "<option value=\"{0}\"{sel}>{0}</option>", esc(v));
    }
    out.push_str("</select>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_formats_figures() {
        assert_eq!(
            esc("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(usd(2_500_000_000), "$2.50");
        assert_eq!(usd(1_500), "$0.000002");
        assert_eq!(dur_us(1_500), "2 ms");
        assert_eq!(ts(0), "1970-01-01 00:00:00");
    }
}
