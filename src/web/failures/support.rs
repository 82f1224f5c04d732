//! What the failure page offers beside the form: the help steps of a kind,
//! whom to contact (the school's own support, else the service's, else the
//! school's office) with `tel:` and pre-filled `mailto:` links, and times
//! in words of the page's language.

use crate::config::Support;
use crate::i18n::Tr;
use crate::resolve::FailureKind;
use crate::store::schools::{Contact, School};

/// One step of "what you can do", with sub-steps (per device).
pub struct Step {
    pub text: &'static str,
    pub sub: Vec<&'static str>,
}

/// A way to reach support: what to show and where the link goes.
pub struct Link {
    pub text: String,
    pub href: String,
}

/// Whom the user can contact: the school's own support, else the
/// service's (config `support`); `None`: the school's office.
pub struct ContactView {
    pub intro: String,
    pub phone: Option<Link>,
    pub email: Option<Link>,
    pub url: Option<Link>,
}

/// The help steps for a kind, as translation keys, most useful first: at
/// least two things to try, then "contact support" (a test holds this).
fn help_keys(kind: FailureKind) -> &'static [&'static str] {
    use FailureKind::*;
    match kind {
        MalformedRequest | InvalidSignature | Replayed => &[
            "help.close_browser",
            "help.private.intro",
            "help.contact_support",
        ],
        Expired => &[
            "help.clock",
            "help.close_browser",
            "help.private.intro",
            "help.contact_support",
        ],
        WrongAudience => &[
            "help.right_portal",
            "help.close_browser",
            "help.private.intro",
            "help.contact_support",
        ],
        IdpError => &[
            "help.portal_home",
            "help.close_browser",
            "help.private.intro",
            "help.contact_support",
        ],
        UnknownIssuer => &[
            "help.right_portal",
            "help.school_connected",
            "help.contact_support",
        ],
        UnknownSchool => &[
            "help.right_school",
            "help.school_connected",
            "help.contact_support",
        ],
        UntrustedSchool => &[
            "help.right_portal",
            "help.right_school",
            "help.contact_support",
        ],
        MissingSchoolCode | InvalidSchoolCode => &[
            "help.right_school",
            "help.tell_school_office",
            "help.contact_support",
        ],
        MissingSubject => &[
            "help.close_browser",
            "help.tell_school_office",
            "help.contact_support",
        ],
        AccountDisabled => &[
            "help.changed_school",
            "help.tell_school_office",
            "help.contact_support",
        ],
        IdentityMismatch => &["help.compare", "help.fill_form", "help.contact_support"],
        AmbiguousIdentity => &["help.homonym", "help.fill_form", "help.contact_support"],
    }
}

/// The help steps for a kind, translated, with the private-window sub-steps.
pub(super) fn help_steps(t: Tr, kind: FailureKind) -> Vec<Step> {
    help_keys(kind)
        .iter()
        .map(|k| Step {
            text: t.get(k),
            sub: if *k == "help.private.intro" {
                [
                    "help.private.desktop",
                    "help.private.ios",
                    "help.private.android",
                ]
                .iter()
                .map(|s| t.get(s))
                .collect()
            } else {
                Vec::new()
            },
        })
        .collect()
}

/// A stored time (`YYYY-MM-DDTHH:MM:SSZ`) in `tz`, in words of the page's
/// language: "2 décembre 2026 à 21:05", "2 december 2026 om 21:05",
/// "2 December 2026 at 21:05". Unreadable: as stored.
pub fn local_time(t: Tr, tz: chrono_tz::Tz, stored: &str) -> String {
    use chrono::{Datelike, TimeZone};
    let Ok(naive) = chrono::NaiveDateTime::parse_from_str(stored, "%Y-%m-%dT%H:%M:%SZ") else {
        return stored.to_string();
    };
    let local = tz.from_utc_datetime(&naive);
    let day = match local.day() {
        1 => t.get("time.day1").to_string(),
        d => d.to_string(),
    };
    let month = format!("time.month.{}", local.month());
    t.get("time.format")
        .replace("{day}", &day)
        .replace("{month}", t.get(&month))
        .replace("{year}", &local.year().to_string())
        .replace("{time}", &local.format("%H:%M").to_string())
}

/// RFC 6068 (mailto) and RFC 3986 percent-encoding: every byte but the
/// unreserved ones (and `@` in the address) as `%XX`, so spaces are `%20`
/// (never `+`) and line breaks `%0D%0A`.
fn percent_encode(s: &str, keep_at: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_at && b == b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A `mailto:` URL with a subject and a body.
pub fn mailto(address: &str, subject: &str, body: &str) -> String {
    format!(
        "mailto:{}?subject={}&body={}",
        percent_encode(address, true),
        percent_encode(subject, false),
        percent_encode(body, false)
    )
}

/// A `tel:` URL: digits, and `+` in front, nothing else. The "(0)" of
/// "+33 (0)1 …" is dropped: it is not dialled after a country code.
pub fn tel(phone: &str) -> String {
    let phone = phone.trim();
    let international = phone.starts_with('+');
    let phone = if international {
        phone.replace("(0)", "")
    } else {
        phone.to_string()
    };
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    if international {
        format!("tel:+{digits}")
    } else {
        format!("tel:{digits}")
    }
}

/// A label and its value as the catalogue pairs them ("Nom : Dupont").
pub(super) fn pair(t: Tr, label: &str, value: &str) -> String {
    t.get("text.pair")
        .replace("{label}", label)
        .replace("{value}", value)
}

/// What the page says about the failure, for the `mailto:` body and the
/// details list.
pub(super) struct Details<'a> {
    pub code: &'a str,
    pub error: &'a str,
    pub school: Option<&'a str>,
    pub portal: Option<&'a str>,
    pub service: &'a str,
    pub when: &'a str,
}

/// The pre-filled e-mail: a greeting, room for the user's message, then
/// what support desks ask first, in the page's language.
fn mail_body(t: Tr, d: &Details) -> String {
    let pair = |label: &str, value: &str| pair(t, t.get(label), value);
    let mut lines = vec![
        t.get("mail.greeting").to_string(),
        String::new(),
        String::new(),
        String::new(),
        t.get("mail.details").to_string(),
        pair("support.code", d.code),
        pair("support.error", d.error),
    ];
    if let Some(s) = d.school {
        lines.push(pair("support.school", s));
    }
    if let Some(p) = d.portal {
        lines.push(pair("support.portal", p));
    }
    lines.push(pair("support.service", d.service));
    lines.push(pair("support.how", t.get("support.how.value")));
    lines.push(pair("support.when", d.when));
    lines.join("\r\n")
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The contact links of one source.
fn contact_view(t: Tr, intro: String, c: &Contact, d: &Details) -> Option<ContactView> {
    let phone = non_empty(&c.phone).map(|p| Link {
        text: p.to_string(),
        href: tel(p),
    });
    let email = non_empty(&c.email).map(|e| {
        let subject = t.get("mail.subject").replace("{code}", d.code);
        Link {
            text: e.to_string(),
            href: mailto(e, &subject, &mail_body(t, d)),
        }
    });
    // Only a web address is a link (never `javascript:` or the like).
    let url = non_empty(&c.url)
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(|u| Link {
            text: u.to_string(),
            href: u.to_string(),
        });
    (phone.is_some() || email.is_some() || url.is_some()).then_some(ContactView {
        intro,
        phone,
        email,
        url,
    })
}

/// Whom to contact: the school's own support when it has one, else the
/// service's (`support` in the config).
pub(super) fn contact(
    t: Tr,
    registered: Option<&(School, Contact)>,
    service: &Support,
    d: &Details,
) -> Option<ContactView> {
    registered
        .filter(|(_, c)| !c.is_empty())
        .and_then(|(s, c)| {
            let intro = t.get("support.from_school").replace("{school}", &s.name);
            contact_view(t, intro, c, d)
        })
        .or_else(|| {
            let c = Contact {
                email: service.email.clone(),
                phone: service.phone.clone(),
                url: service.url.clone(),
            };
            contact_view(t, t.get("support.from_service").to_string(), &c, d)
        })
}

/// The school's office, by name when the school is registered.
pub(super) fn office(t: Tr, registered: Option<&(School, Contact)>) -> String {
    match registered {
        Some((s, _)) => t.get("support.school_office").replace("{school}", &s.name),
        None => t.get("support.school_office.any").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn every_kind_has_two_things_to_try_before_contact() {
        for kind in FailureKind::ALL {
            let keys = help_keys(kind);
            assert_eq!(keys.last(), Some(&"help.contact_support"), "{kind}");
            assert!(keys.len() >= 3, "{kind}: {keys:?}");
        }
    }

    #[test]
    fn times_are_local_and_in_words() {
        let paris = chrono_tz::Europe::Paris;
        for (lang, stored, shown) in [
            (Lang::Fr, "2026-12-02T20:05:09Z", "2 décembre 2026 à 21:05"),
            (Lang::Nl, "2026-12-02T20:05:09Z", "2 december 2026 om 21:05"),
            (Lang::En, "2026-12-02T20:05:09Z", "2 December 2026 at 21:05"),
            (Lang::Fr, "2026-07-01T08:30:00Z", "1er juillet 2026 à 10:30"),
            (Lang::Fr, "garbage", "garbage"),
        ] {
            assert_eq!(local_time(Tr::new(lang), paris, stored), shown, "{stored}");
        }
    }

    #[test]
    fn contact_links_are_encoded_for_their_scheme() {
        assert_eq!(tel("+33 (0)1 23 45-67.89"), "tel:+33123456789");
        assert_eq!(tel("020 123 45 67"), "tel:0201234567");
        assert_eq!(
            mailto("aide@école.fr", "Code JNT-1 & co", "a b\r\nc=d?"),
            "mailto:aide@%C3%A9cole.fr?subject=Code%20JNT-1%20%26%20co&body=a%20b%0D%0Ac%3Dd%3F"
        );
    }
}
