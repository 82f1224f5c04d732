//! The failure form as shown ("Identification impossible … renseignez le
//! formulaire puis cliquez sur Envoyer"): its fields with values, errors
//! and ARIA links, the children of a parent, the error summary; and the
//! reading of its POST.

use super::support::pair;
use crate::i18n::Tr;
use crate::resolve::report::{ChildRow, Problems, Report, ROLES};
use std::collections::HashMap;

/// One field of the form as shown: everything the markup needs, translated.
pub struct Field {
    /// The element's ID (`last_name`, `child-2-birth_date`), the target of
    /// the error summary's link.
    pub id: String,
    /// The posted name (`last_name`, `child_birth_date[]`).
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
    /// The error message (translated), shown above the input.
    pub error: Option<&'static str>,
    /// A hint (translated) with ID `{id}-hint`.
    pub hint: Option<&'static str>,
    /// `aria-describedby`: the hint's and the error's IDs, or empty.
    pub describedby: String,
    /// `aria-invalid`: its own error, or one it shares (no e-mail and no
    /// phone; a parent's first, empty, child row).
    pub invalid: bool,
    /// The input's `type`: `text`, `date`, `email`, `tel`.
    pub input_type: &'static str,
    /// The `autocomplete` token, or empty.
    pub autocomplete: &'static str,
    pub maxlength: usize,
    pub required: bool,
}

impl Field {
    fn new(t: Tr, id: String, name: &'static str, label: &'static str, value: &str) -> Field {
        Field {
            id,
            name,
            label: t.get(label),
            value: value.to_string(),
            error: None,
            hint: None,
            describedby: String::new(),
            invalid: false,
            input_type: "text",
            autocomplete: "",
            maxlength: 100,
            required: false,
        }
    }

    /// The input's type, `autocomplete` token, length limit and whether it
    /// is required, by field.
    fn kind(mut self, field: &str, own: bool) -> Field {
        (self.input_type, self.maxlength) = match field {
            "birth_date" => ("date", 10),
            "email" => ("email", 200),
            "phone" => ("tel", 30),
            "message" => ("text", 2000),
            _ => ("text", 100),
        };
        // The user's own details are theirs to autofill; a child's are not.
        self.autocomplete = match (field, own) {
            ("last_name", true) => "family-name",
            ("first_name", true) => "given-name",
            ("birth_date", true) => "bday",
            ("email", true) => "email",
            ("phone", true) => "tel",
            _ => "off",
        };
        self.required = matches!(field, "last_name" | "first_name" | "birth_date" | "role");
        self
    }

    fn hint(mut self, text: &'static str) -> Field {
        self.hint = Some(text);
        self
    }

    /// Sets the error and computes `aria-describedby` (plus the `extra` ID
    /// of an error it shares).
    fn finish(mut self, error: Option<&'static str>, extra: Option<&str>) -> Field {
        self.error = error;
        self.invalid = error.is_some() || extra.is_some();
        let mut ids: Vec<String> = Vec::new();
        if self.hint.is_some() {
            ids.push(format!("{}-hint", self.id));
        }
        if self.error.is_some() {
            ids.push(format!("{}-error", self.id));
        }
        ids.extend(extra.map(str::to_string));
        self.describedby = ids.join(" ");
        self
    }
}

/// One child row of a parent's report, as shown.
pub struct ChildView {
    /// 0-based, the value of its "remove" button.
    pub index: usize,
    /// 1-based, in its legend.
    pub number: usize,
    pub fields: Vec<Field>,
}

/// The form as shown: fields with values and errors, the children (for a
/// parent), the error summary and the CSRF token.
pub struct FormView {
    fields: HashMap<&'static str, Field>,
    pub children: Vec<ChildView>,
    /// "A parent names at least one child", above the first child.
    pub children_error: Option<&'static str>,
    /// The error summary: (link target, message), in the form's order.
    pub summary: Vec<(String, String)>,
    /// Whether the children block shows (the role is parent); without
    /// JavaScript it appears after a submit as a parent.
    pub show_children: bool,
    pub role: String,
    pub csrf: String,
}

const MAIN_FIELDS: [(&str, &str); 7] = [
    ("last_name", "form.last_name"),
    ("first_name", "form.first_name"),
    ("birth_date", "form.birth_date"),
    ("role", "form.role"),
    ("class_name", "form.class_name"),
    ("email", "form.email"),
    ("phone", "form.phone"),
];

const CHILD_FIELDS: [(&str, &str, &str); 4] = [
    ("last_name", "child_last_name[]", "form.last_name"),
    ("first_name", "child_first_name[]", "form.first_name"),
    ("birth_date", "child_birth_date[]", "form.birth_date"),
    ("class_name", "child_class_name[]", "form.class_name"),
];

impl FormView {
    /// A field by its name (`last_name` … `message`).
    pub fn field(&self, name: &str) -> &Field {
        self.fields
            .get(name)
            .or_else(|| self.fields.get("message"))
            .expect("the form has a message field")
    }

    /// The role options: (value, translated label, selected).
    pub fn roles(&self, t: &Tr) -> Vec<(&'static str, &'static str, bool)> {
        ROLES
            .iter()
            .map(|r| {
                let label = match *r {
                    "student" => "form.role.student",
                    "parent" => "form.role.parent",
                    "teacher" => "form.role.teacher",
                    _ => "form.role.staff",
                };
                (*r, t.get(label), self.role == *r)
            })
            .collect()
    }

    pub fn has_errors(&self) -> bool {
        !self.summary.is_empty()
    }

    /// The form for a report and its problems (none: a form shown afresh).
    pub(super) fn from_report(t: Tr, r: &Report, csrf: String, problems: &Problems) -> FormView {
        let mut summary = Vec::new();
        let fields = main_fields(t, r, problems, &mut summary);
        let show_children = r.role == "parent";
        let children_error = problems.fields.get("children").copied().map(|k| t.get(k));
        if let (Some(e), true) = (children_error, show_children) {
            summary.push(("#child-1-last_name".to_string(), e.to_string()));
        }
        let children = child_views(
            t,
            r,
            problems,
            children_error.is_some(),
            show_children,
            &mut summary,
        );
        if let Some(e) = fields.get("message").and_then(|f| f.error) {
            summary.push(("#message".into(), pair(t, t.get("form.message"), e)));
        }
        FormView {
            fields,
            children,
            children_error,
            summary,
            show_children,
            role: r.role.clone(),
            csrf,
        }
    }
}

/// The user's own fields and the message, by name; the errors of all but
/// the message go to `summary`, in the form's order.
fn main_fields(
    t: Tr,
    r: &Report,
    problems: &Problems,
    summary: &mut Vec<(String, String)>,
) -> HashMap<&'static str, Field> {
    let value = |name: &str| match name {
        "last_name" => &r.last_name,
        "first_name" => &r.first_name,
        "birth_date" => &r.birth_date,
        "role" => &r.role,
        "class_name" => &r.class_name,
        "email" => &r.email,
        "phone" => &r.phone,
        _ => &r.message,
    };
    let error = |name: &str| problems.fields.get(name).copied().map(|k| t.get(k));
    let mut fields = HashMap::new();
    // "An e-mail or a phone" is said once, on the e-mail field; the
    // phone field points at it too.
    let contact_missing = problems.fields.get("email") == Some(&"form.error.contact");
    for (name, label) in MAIN_FIELDS.iter().chain(&[("message", "form.message")]) {
        let mut f = Field::new(t, name.to_string(), name, label, value(name)).kind(name, true);
        f = match *name {
            "birth_date" => f.hint(t.get("form.date_hint")),
            "role" => f.hint(t.get("form.parent_note")),
            "email" | "phone" => f.hint(t.get("form.contact_hint")),
            _ => f,
        };
        let extra = (*name == "phone" && contact_missing).then_some("email-error");
        let f = f.finish(error(name), extra);
        if *name != "message" {
            if let Some(e) = f.error {
                summary.push((format!("#{}", f.id), pair(t, f.label, e)));
            }
        }
        fields.insert(*name, f);
    }
    fields
}

/// The child rows of a parent's report (one empty row when there is none);
/// their errors go to `summary` when the rows show.
fn child_views(
    t: Tr,
    r: &Report,
    problems: &Problems,
    children_error: bool,
    show_children: bool,
    summary: &mut Vec<(String, String)>,
) -> Vec<ChildView> {
    let mut rows = r.children.clone();
    if rows.is_empty() {
        rows.push(ChildRow::default());
    }
    rows.iter()
        .enumerate()
        .map(|(i, c)| {
            let fields = CHILD_FIELDS
                .iter()
                .map(|(field, name, label)| {
                    let v = match *field {
                        "last_name" => &c.last_name,
                        "first_name" => &c.first_name,
                        "birth_date" => &c.birth_date,
                        _ => &c.class_name,
                    };
                    let id = format!("child-{}-{field}", i + 1);
                    let mut f = Field::new(t, id, name, label, v).kind(field, false);
                    if *field == "birth_date" {
                        f = f.hint(t.get("form.date_hint"));
                    }
                    let extra = (i == 0 && *field == "last_name" && children_error)
                        .then_some("children-error");
                    let e = problems
                        .children
                        .get(&(i, *field))
                        .copied()
                        .map(|k| t.get(k));
                    let f = f.finish(e, extra);
                    if let (Some(e), true) = (f.error, show_children) {
                        let who = format!("{} {} – {}", t.get("form.child"), i + 1, f.label);
                        summary.push((format!("#{}", f.id), pair(t, &who, e)));
                    }
                    f
                })
                .collect();
            ChildView {
                index: i,
                number: i + 1,
                fields,
            }
        })
        .collect()
}

/// Reads the posted form; repeated `child_*[]` fields become rows.
pub(super) fn parse_report(body: &[u8]) -> (Report, HashMap<String, String>) {
    let mut r = Report::default();
    let mut other = HashMap::new();
    let mut cols: [Vec<String>; 4] = Default::default();
    for (k, v) in url::form_urlencoded::parse(body) {
        let v = v.trim().to_string();
        match k.as_ref() {
            "last_name" => r.last_name = v,
            "first_name" => r.first_name = v,
            "birth_date" => r.birth_date = v,
            "role" => r.role = v,
            "class_name" => r.class_name = v,
            "email" => r.email = v,
            "phone" => r.phone = v,
            "message" => r.message = v,
            "child_last_name[]" => cols[0].push(v),
            "child_first_name[]" => cols[1].push(v),
            "child_birth_date[]" => cols[2].push(v),
            "child_class_name[]" => cols[3].push(v),
            k => {
                other.insert(k.to_string(), v);
            }
        }
    }
    let n = cols.iter().map(Vec::len).max().unwrap_or(0).min(20);
    let at = |c: &Vec<String>, i: usize| c.get(i).cloned().unwrap_or_default();
    r.children = (0..n)
        .map(|i| ChildRow {
            last_name: at(&cols[0], i),
            first_name: at(&cols[1], i),
            birth_date: at(&cols[2], i),
            class_name: at(&cols[3], i),
        })
        .collect();
    (r, other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_rows_are_read_from_repeated_fields() {
        let (r, other) = parse_report(b"role=parent&child_last_name%5B%5D=A&child_first_name%5B%5D=B&child_last_name%5B%5D=C&csrf_token=x");
        assert_eq!(r.children.len(), 2);
        assert_eq!(r.children[1].last_name, "C");
        assert_eq!(r.children[1].first_name, "");
        assert_eq!(other.get("csrf_token").map(String::as_str), Some("x"));
    }
}
