//! What a user declares on the failure form, and the rules it must meet:
//! every field checked, dates normalised, errors named by field (and by
//! child row and field) as translation keys. Pure: the web layer parses and
//! renders, this decides.

use super::parse_date;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One child row of a parent's report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildRow {
    pub last_name: String,
    pub first_name: String,
    pub birth_date: String,
    pub class_name: String,
}

impl ChildRow {
    fn is_blank(&self) -> bool {
        self.last_name.is_empty()
            && self.first_name.is_empty()
            && self.birth_date.is_empty()
            && self.class_name.is_empty()
    }
}

/// What the user declared on the failure form, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub last_name: String,
    pub first_name: String,
    pub birth_date: String,
    pub role: String,
    pub class_name: String,
    pub email: String,
    pub phone: String,
    pub message: String,
    #[serde(default)]
    pub children: Vec<ChildRow>,
}

/// The roles a user may declare, in the form's order.
pub const ROLES: [&str; 4] = ["student", "parent", "teacher", "staff"];

/// What is wrong with a report, as translation keys: by field (`last_name`
/// … `message`, and `children` for a parent who names none) and by child
/// row (its index once blank rows are dropped) and field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    pub fields: HashMap<&'static str, &'static str>,
    pub children: HashMap<(usize, &'static str), &'static str>,
}

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.children.is_empty()
    }
}

/// An e-mail address as people type it: one `@`, a dotted domain, no
/// spaces. (Deliverability is for the mail server to judge.)
pub fn is_email(s: &str) -> bool {
    s.len() <= 200
        && !s.contains(char::is_whitespace)
        && s.split_once('@').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.contains('@')
                && b.contains('.')
                && !b.starts_with('.')
                && !b.ends_with('.')
        })
}

/// A phone number as people write it: 6 to 20 digits, with spaces, `+`,
/// parentheses, dots or hyphens between them.
pub fn is_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    (6..=20).contains(&digits)
        && s.len() <= 30
        && s.chars()
            .all(|c| c.is_ascii_digit() || " +().-".contains(c))
}

/// A birth date: a real day, after 1900, before today; normalised to
/// `YYYY-MM-DD`. The error is a translation key.
fn birth_date(s: &str, today: chrono::NaiveDate) -> Result<String, &'static str> {
    if s.is_empty() {
        return Err("form.error.required");
    }
    match parse_date(s) {
        Some(d) if d >= today => Err("form.error.date_future"),
        Some(d) if d.format("%Y").to_string().as_str() >= "1900" => {
            Ok(d.format("%Y-%m-%d").to_string())
        }
        _ => Err("form.error.birth_date"),
    }
}

/// A required name of at most 100 characters.
fn name(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        Some("form.error.required")
    } else if too_long(s, 100) {
        Some("form.error.too_long")
    } else {
        None
    }
}

fn too_long(s: &str, n: usize) -> bool {
    s.chars().count() > n
}

/// Validates a report against today's date (UTC).
pub fn validate(r: &mut Report) -> Problems {
    validate_on(r, chrono::Utc::now().date_naive())
}

/// Validates a report; dates are normalised in place, blank child rows
/// dropped, and children cleared for anyone but a parent.
pub fn validate_on(r: &mut Report, today: chrono::NaiveDate) -> Problems {
    let mut p = Problems::default();
    let e = &mut p.fields;
    for (field, value) in [("last_name", &r.last_name), ("first_name", &r.first_name)] {
        if let Some(why) = name(value) {
            e.insert(field, why);
        }
    }
    match birth_date(&r.birth_date, today) {
        Ok(d) => r.birth_date = d,
        Err(why) => {
            e.insert("birth_date", why);
        }
    }
    if r.role.is_empty() {
        e.insert("role", "form.error.required");
    } else if !ROLES.contains(&r.role.as_str()) {
        e.insert("role", "form.error.role");
    }
    if too_long(&r.class_name, 100) {
        e.insert("class_name", "form.error.too_long");
    }
    if !r.email.is_empty() && !is_email(&r.email) {
        e.insert("email", "form.error.email");
    }
    if !r.phone.is_empty() && !is_phone(&r.phone) {
        e.insert("phone", "form.error.phone");
    }
    // The school must be able to answer: one of the two, named on the
    // first (the web layer points the phone field at it too).
    if r.email.is_empty() && r.phone.is_empty() {
        e.insert("email", "form.error.contact");
    }
    if too_long(&r.message, 2000) {
        e.insert("message", "form.error.too_long");
    }
    r.children.retain(|c| !c.is_blank());
    if r.role != "parent" {
        r.children.clear();
        return p;
    }
    if r.children.is_empty() {
        e.insert("children", "form.error.children");
    }
    for (i, c) in r.children.iter_mut().enumerate() {
        for (field, value) in [("last_name", &c.last_name), ("first_name", &c.first_name)] {
            if let Some(why) = name(value) {
                p.children.insert((i, field), why);
            }
        }
        match birth_date(&c.birth_date, today) {
            Ok(d) => c.birth_date = d,
            Err(why) => {
                p.children.insert((i, "birth_date"), why);
            }
        }
        if too_long(&c.class_name, 100) {
            p.children.insert((i, "class_name"), "form.error.too_long");
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 2).expect("date")
    }

    fn valid() -> Report {
        Report {
            last_name: "Dupont".into(),
            first_name: "Élodie".into(),
            birth_date: "01/05/2010".into(),
            role: "student".into(),
            email: "e@example.test".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_report_passes_and_dates_are_normalised() {
        let mut r = valid();
        let p = validate_on(&mut r, today());
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(r.birth_date, "2010-05-01");
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut r = Report {
            role: "pirate".into(),
            birth_date: "2010-02-30".into(),
            email: "nope".into(),
            phone: "12".into(),
            class_name: "x".repeat(101),
            message: "y".repeat(2001),
            ..Default::default()
        };
        let e = validate_on(&mut r, today()).fields;
        assert_eq!(e.get("last_name"), Some(&"form.error.required"));
        assert_eq!(e.get("first_name"), Some(&"form.error.required"));
        assert_eq!(e.get("birth_date"), Some(&"form.error.birth_date"));
        assert_eq!(e.get("role"), Some(&"form.error.role"));
        assert_eq!(e.get("email"), Some(&"form.error.email"));
        assert_eq!(e.get("phone"), Some(&"form.error.phone"));
        assert_eq!(e.get("class_name"), Some(&"form.error.too_long"));
        assert_eq!(e.get("message"), Some(&"form.error.too_long"));
    }

    #[test]
    fn a_missing_role_a_future_birth_date_and_no_way_to_answer_are_named() {
        let mut r = Report {
            role: String::new(),
            birth_date: "2027-01-01".into(),
            email: String::new(),
            ..valid()
        };
        let e = validate_on(&mut r, today()).fields;
        assert_eq!(e.get("role"), Some(&"form.error.required"));
        assert_eq!(e.get("birth_date"), Some(&"form.error.date_future"));
        assert_eq!(e.get("email"), Some(&"form.error.contact"));
        let mut r = Report {
            birth_date: "1899-12-31".into(),
            last_name: "x".repeat(101),
            ..valid()
        };
        let e = validate_on(&mut r, today()).fields;
        assert_eq!(e.get("birth_date"), Some(&"form.error.birth_date"));
        assert_eq!(e.get("last_name"), Some(&"form.error.too_long"));
    }

    #[test]
    fn a_parent_names_at_least_one_complete_child() {
        let mut r = Report {
            role: "parent".into(),
            ..valid()
        };
        assert_eq!(
            validate_on(&mut r, today()).fields.get("children"),
            Some(&"form.error.children")
        );
        let mut r = Report {
            role: "parent".into(),
            children: vec![
                ChildRow {
                    last_name: "Dupont".into(),
                    first_name: "Léo".into(),
                    birth_date: "2015-01-02".into(),
                    class_name: "CM1".into(),
                },
                ChildRow::default(),
                ChildRow {
                    last_name: "Dupont".into(),
                    birth_date: "2030-01-01".into(),
                    ..Default::default()
                },
            ],
            ..valid()
        };
        let p = validate_on(&mut r, today());
        assert!(p.fields.is_empty(), "{p:?}");
        assert_eq!(r.children.len(), 2, "the blank row is dropped");
        assert_eq!(
            p.children.get(&(1, "first_name")),
            Some(&"form.error.required")
        );
        assert_eq!(
            p.children.get(&(1, "birth_date")),
            Some(&"form.error.date_future")
        );
        assert_eq!(p.children.get(&(1, "last_name")), None);
        assert_eq!(p.children.len(), 2);
    }

    #[test]
    fn children_count_only_for_a_parent() {
        let mut r = Report {
            children: vec![ChildRow {
                last_name: "X".into(),
                ..Default::default()
            }],
            ..valid()
        };
        assert!(validate_on(&mut r, today()).is_empty());
        assert!(r.children.is_empty());
    }

    #[test]
    fn contact_details_are_checked_for_shape() {
        assert!(is_email("a.b@c.example"));
        assert!(!is_email("a@b@c.example") && !is_email("a b@c.fr") && !is_email("@c.fr"));
        assert!(is_phone("+33 (0)1 23 45 67 89") && is_phone("020-123 45 67"));
        assert!(!is_phone("12345") && !is_phone("01 23 45 67 89 ext"));
    }
}
