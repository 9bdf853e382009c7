//! Mail delivery through a real SMTP conversation with a sink server on loopback: each
//! message is a `mail` job, retried by the queue while the server is unreachable.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use platform::config::MailConfig;
use platform::infra::jobs::Clock;
use platform::infra::mail::{Mailer, Smtp};
use platform::workers;
use secrecy::SecretString;
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A minimal SMTP server that accepts every message and keeps its DATA.
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                let mut in_data = false;
                let mut data = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            store.lock().expect("lock").push(std::mem::take(&mut data));
                            let _ = write.write_all(b"250 queued\r\n").await;
                        } else {
                            data.push_str(&line);
                            data.push('\n');
                        }
                        continue;
                    }
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 ok\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"502 not implemented\r\n",
                    };
                    let _ = write.write_all(reply).await;
                }
            });
        }
    });
    (port, received)
}

fn smtp_to(port: u16) -> Smtp {
    let config = MailConfig {
        smtp_url: Some(SecretString::from(format!("smtp://127.0.0.1:{port}"))),
        from: "Slipway <no-reply@hosting.test>".into(),
        ..MailConfig::default()
    };
    Smtp::from_config(&config)
        .expect("valid")
        .expect("configured")
}

async fn unsent(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL")
        .fetch_one(pool)
        .await
        .expect("count")
}

#[sqlx::test(migrations = "../migrations")]
async fn queued_mail_is_sent_over_smtp_once_and_retried_while_the_server_is_down(pool: PgPool) {
    let clock = Clock::manual(Utc::now() + chrono::Duration::seconds(1));
    let p = test_support::test_platform(pool.clone()).with_clock(clock.clone());
    test_support::owner_with_email(&p, "ada@example.com").await;
    assert_eq!(unsent(&pool).await, 1);

    // An unreachable server: nothing is lost, the message's job waits for its retry.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);
    let down = p
        .clone()
        .with_mailer(Mailer::Smtp(Box::new(smtp_to(closed_port))));
    assert_eq!(workers::run_due(&down).await.expect("ran"), 1);
    assert_eq!(unsent(&pool).await, 1);
    let (error,): (String,) =
        sqlx::query_as("SELECT last_error FROM jobs WHERE kind = 'mail' AND state = 'queued'")
            .fetch_one(&pool)
            .await
            .expect("queued for a retry");
    assert!(error.starts_with("SMTP:"), "{error}");

    let (port, received) = smtp_sink().await;
    let up = p.clone().with_mailer(Mailer::Smtp(Box::new(smtp_to(port))));
    assert_eq!(workers::run_due(&up).await.expect("ran"), 0, "not due yet");
    clock.set(p.jobs.next_due().await.expect("next").expect("queued"));
    assert_eq!(workers::run_due(&up).await.expect("sent"), 1);
    assert_eq!(unsent(&pool).await, 0);
    clock.set(Utc::now() + chrono::Duration::days(2));
    assert_eq!(workers::run_due(&up).await.expect("nothing left"), 0);

    let messages = received.lock().expect("lock").clone();
    assert_eq!(messages.len(), 1, "sent exactly once");
    let message = &messages[0];
    assert!(message.contains("To: ada@example.com"), "{message}");
    assert!(
        message.contains("From: Slipway <no-reply@hosting.test>"),
        "{message}"
    );
    assert!(
        message.contains("Subject: Verify your email address"),
        "{message}"
    );
    assert!(
        message.contains("https://hosting.test/verify?token="),
        "{message}"
    );
}

#[test]
fn bad_smtp_settings_name_the_setting() {
    let config = MailConfig {
        smtp_url: Some(SecretString::from("imap://example.com".to_owned())),
        ..MailConfig::default()
    };
    let error = Smtp::from_config(&config).unwrap_err().to_string();
    assert!(error.starts_with("setting `mail.smtp_url`"), "{error}");
    let config = MailConfig {
        smtp_url: Some(SecretString::from("smtp://127.0.0.1:2525".to_owned())),
        from: "not an address".into(),
        ..MailConfig::default()
    };
    let error = Smtp::from_config(&config).unwrap_err().to_string();
    assert!(error.starts_with("setting `mail.from`"), "{error}");
    assert!(
        Smtp::from_config(&MailConfig::default())
            .expect("ok")
            .is_none()
    );
}
