//! Telling users their failure was resolved: the e-mails queued with each
//! resolution (`store::mail`) are sent by a background task through
//! `smtp_url`, with retries (1 minute, doubling, at most an hour apart; given
//! up after 12 tries), so a mail server that is down loses nothing and never
//! blocks the desk. The message says only that the user can log in again,
//! with the link, in the language of the failure page, greeting by first
//! name: nothing else personal.

use crate::i18n::{Lang, Tr};
use crate::service::Service;
use crate::store::mail::{self, Queued};
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// Tries before an e-mail is given up.
const MAX_ATTEMPTS: i64 = 12;
/// E-mails sent per round.
const BATCH: i64 = 50;

/// The subject and body of the e-mail for `q`.
pub fn render(q: &Queued, public_url: &str) -> (String, String) {
    let t = Tr::new(Lang::from_code(&q.lang).unwrap_or(Lang::Fr));
    let link = format!("{public_url}/failures/{}", q.reference);
    let greeting = match q
        .first_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(name) => t.get("mail.resolved.greeting_name").replace("{name}", name),
        None => t.get("mail.resolved.greeting").to_string(),
    };
    let body = format!(
        "{greeting}\n\n{}\n\n{link}\n\n{}\n",
        t.get("mail.resolved.body"),
        t.get("mail.resolved.footer")
    );
    (t.get("mail.resolved.subject").to_string(), body)
}

/// When to try again after `attempts` failed tries (`None`: give up).
pub fn retry_after(attempts: i64) -> Option<Duration> {
    (attempts < MAX_ATTEMPTS)
        .then(|| Duration::from_secs((60u64 << attempts.clamp(0, 6)).min(3600)))
}

/// Sends what is due; returns how many were sent. Without `smtp_url`,
/// nothing is sent (the desk says so). `now` is a Unix time.
pub async fn deliver_due(svc: &Service, now: i64) -> Result<usize, sqlx::Error> {
    let Some(url) = &svc.config.smtp_url else {
        return Ok(0);
    };
    let mut conn = svc.pool.acquire().await?;
    let due = mail::due(&mut conn, now, BATCH).await?;
    drop(conn);
    if due.is_empty() {
        return Ok(0);
    }
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map(|b| b.timeout(Some(Duration::from_secs(20))).build());
    let mut sent = 0;
    for q in due {
        let outcome = match &transport {
            Ok(t) => send_one(t, &svc.config.mail_from, &q, &svc.config.public_url).await,
            Err(e) => Err(format!("smtp_url: {e}")),
        };
        let mut conn = svc.pool.acquire().await?;
        match outcome {
            Ok(()) => {
                mail::mark_sent(&mut conn, q.id).await?;
                sent += 1;
            }
            Err(e) => {
                let next = retry_after(q.attempts + 1).map(|d| now + d.as_secs() as i64);
                if next.is_none() {
                    tracing::error!(mail = q.id, error = %e, "resolution e-mail given up");
                } else {
                    tracing::warn!(mail = q.id, error = %e, "resolution e-mail not sent yet");
                }
                mail::mark_failed(&mut conn, q.id, &e, next).await?;
            }
        }
    }
    Ok(sent)
}

async fn send_one(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &str,
    q: &Queued,
    public_url: &str,
) -> Result<(), String> {
    let (subject, body) = render(q, public_url);
    let message = Message::builder()
        .from(from.parse().map_err(|e| format!("mail_from: {e}"))?)
        .to(q.to_address.parse().map_err(|e| format!("address: {e}"))?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| e.to_string())?;
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_give_up() {
        assert_eq!(retry_after(1), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(0), Some(Duration::from_secs(60)));
        assert_eq!(retry_after(11), Some(Duration::from_secs(3600)));
        assert_eq!(retry_after(12), None);
    }

    #[test]
    fn the_message_speaks_the_users_language_and_names_only_the_first_name() {
        let q = Queued {
            id: 1,
            to_address: "parent@example.test".into(),
            lang: "nl".into(),
            first_name: Some("Sanne".into()),
            reference: "abc".into(),
            attempts: 0,
        };
        let (subject, body) = render(&q, "https://sp.test");
        assert!(!subject.is_empty());
        assert!(body.contains("Sanne"), "{body}");
        assert!(body.contains("https://sp.test/failures/abc"), "{body}");
        assert!(!body.contains("parent@example.test"));
        let (fr_subject, _) = render(
            &Queued {
                lang: "fr".into(),
                ..q.clone()
            },
            "https://sp.test",
        );
        assert_ne!(fr_subject, subject, "French and Dutch differ");
    }
}
