//! What a user declares on the failure form, and the rules it must meet:
//! every field checked, dates normalised, errors named by field as
//! translation keys. Pure: the web layer parses, this decides.

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

/// Validates a report; returns errors by field (translation keys).
pub fn validate(
    r: &mut Report,
) -> (
    HashMap<&'static str, &'static str>,
    HashMap<usize, &'static str>,
) {
    let mut e = HashMap::new();
    let mut ce = HashMap::new();
    let too_long = |s: &str, n: usize| s.chars().count() > n;
    for (field, value) in [("last_name", &r.last_name), ("first_name", &r.first_name)] {
        if value.is_empty() {
            e.insert(field, "form.error.required");
        } else if too_long(value, 100) {
            e.insert(field, "form.error.too_long");
        }
    }
    let today = chrono::Utc::now().date_naive();
    let valid_birth = |s: &str| {
        parse_date(s).filter(|d| *d < today && d.format("%Y").to_string().as_str() >= "1900")
    };
    match valid_birth(&r.birth_date) {
        _ if r.birth_date.is_empty() => {
            e.insert("birth_date", "form.error.required");
        }
        Some(d) => r.birth_date = d.format("%Y-%m-%d").to_string(),
        None => {
            e.insert("birth_date", "form.error.date");
        }
    }
    if !["student", "parent", "teacher", "staff"].contains(&r.role.as_str()) {
        e.insert("role", "form.error.role");
    }
    if too_long(&r.class_name, 100) {
        e.insert("class_name", "form.error.too_long");
    }
    let email_ok = |s: &str| {
        s.len() <= 200
            && !s.contains(char::is_whitespace)
            && s.split_once('@').is_some_and(|(a, b)| {
                !a.is_empty() && b.contains('.') && !b.starts_with('.') && !b.ends_with('.')
            })
    };
    if !r.email.is_empty() && !email_ok(&r.email) {
        e.insert("email", "form.error.email");
    }
    let phone_ok = |s: &str| {
        let digits = s.chars().filter(char::is_ascii_digit).count();
        (6..=20).contains(&digits)
            && s.len() <= 30
            && s.chars()
                .all(|c| c.is_ascii_digit() || " +().-".contains(c))
    };
    if !r.phone.is_empty() && !phone_ok(&r.phone) {
        e.insert("phone", "form.error.phone");
    }
    if r.email.is_empty() && r.phone.is_empty() {
        e.insert("email", "form.error.contact");
    }
    if too_long(&r.message, 2000) {
        e.insert("message", "form.error.too_long");
    }
    // Blank child rows are dropped; children only count for a parent.
    r.children.retain(|c| {
        !(c.last_name.is_empty()
            && c.first_name.is_empty()
            && c.birth_date.is_empty()
            && c.class_name.is_empty())
    });
    if r.role == "parent" {
        if r.children.is_empty() {
            e.insert("children", "form.error.children");
        }
        for (i, c) in r.children.iter_mut().enumerate() {
            let birth = valid_birth(&c.birth_date);
            if c.last_name.is_empty()
                || c.first_name.is_empty()
                || birth.is_none()
                || too_long(&c.last_name, 100)
                || too_long(&c.first_name, 100)
                || too_long(&c.class_name, 100)
            {
                ce.insert(i, "form.error.child");
            } else if let Some(d) = birth {
                c.birth_date = d.format("%Y-%m-%d").to_string();
            }
        }
    } else {
        r.children.clear();
    }
    (e, ce)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (e, ce) = validate(&mut r);
        assert!(e.is_empty() && ce.is_empty(), "{e:?}");
        assert_eq!(r.birth_date, "2010-05-01");
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut r = Report {
            role: "pirate".into(),
            birth_date: "2010-02-30".into(),
            email: "nope".into(),
            phone: "12".into(),
            ..Default::default()
        };
        let (e, _) = validate(&mut r);
        assert_eq!(e.get("last_name"), Some(&"form.error.required"));
        assert_eq!(e.get("birth_date"), Some(&"form.error.date"));
        assert_eq!(e.get("role"), Some(&"form.error.role"));
        assert_eq!(e.get("email"), Some(&"form.error.email"));
        assert_eq!(e.get("phone"), Some(&"form.error.phone"));
    }

    #[test]
    fn a_parent_names_at_least_one_complete_child() {
        let mut r = Report {
            role: "parent".into(),
            ..valid()
        };
        assert_eq!(
            validate(&mut r).0.get("children"),
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
                    ..Default::default()
                },
            ],
            ..valid()
        };
        let (e, ce) = validate(&mut r);
        assert!(e.is_empty());
        assert_eq!(r.children.len(), 2, "the blank row is dropped");
        assert_eq!(ce.get(&1), Some(&"form.error.child"));
    }
}
