//! Emails leave over SMTP to a real mail server: they arrive with the right headers and body,
//! wait (and are retried) while the server is down, and are marked failed after their attempts.
//! These need `python3-aiosmtpd` and fail, never pass, without it.

use std::collections::{BTreeMap, HashSet};

use nubo_notifications::config::{Config, SEND_ATTEMPTS, SMTP_URL};
use nubo_notifications::mail_outbox::Mailer;
use nubo_notifications::metrics::NotificationMetrics;
use nubo_platform::both_modes;
use nubo_platform::metrics::Metrics;
use nubo_platform::tokio_util::sync::CancellationToken;

use crate::helpers::*;
use nubo_notifications::testing::MailServer;

both_modes!(
    an_email_arrives_at_the_mail_server,
    an_email_waits_for_a_mail_server_that_is_down,
    an_email_is_marked_failed_after_its_last_attempt,
    two_replicas_send_each_email_once,
);

async fn an_email_arrives_at_the_mail_server(mode: TestMode) {
    let server = MailServer::start().await;
    let shop = start_with(
        mode,
        Some(server),
        &[("NUBO_NOTIFICATIONS_FROM", "Tea Shop <tea@shop.test>")],
    )
    .await;
    let order = Order::new("nora@example.org");

    let event = shop.publish(&order.confirmed()).await;

    let email = shop.email_for(order.order_id, event.id).await;
    let email = shop
        .email_in_status(email["id"].as_str().unwrap(), "sent")
        .await;
    assert_eq!(email["attempts"], 1);
    assert!(email["sent_at"].is_string(), "{email}");
    assert!(email.get("last_error").is_none(), "{email}");

    let server = shop.mail_server.as_ref().unwrap();
    let mails = server.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail.header("To"), Some("nora@example.org"));
    assert_eq!(mail.header("From"), Some("\"Tea Shop\" <tea@shop.test>"));
    assert_eq!(mail.header("Subject"), email["subject"].as_str());
    assert_eq!(
        mail.header("Message-ID"),
        Some(format!("<{}@shop.test>", email["id"].as_str().unwrap()).as_str())
    );
    assert!(
        mail.header("Content-Type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(
        mail.body.trim_end(),
        email["body"].as_str().unwrap().trim_end()
    );
    assert_eq!(
        shop.metric("nubo_notifications_sent_total", &[r#"outcome="sent""#])
            .await,
        1.0
    );
    shop.shutdown().await;
}

async fn an_email_waits_for_a_mail_server_that_is_down(mode: TestMode) {
    let shop = start_with(mode, Some(MailServer::down()), &[]).await;
    let order = Order::new("otto@example.org");

    let event = shop.publish(&order.confirmed()).await;

    let email = shop.email_for(order.order_id, event.id).await;
    let id = email["id"].as_str().unwrap().to_owned();
    eventually("the first attempt failed", || async {
        let response = shop.get_as(Some(&shop.admin_token), &id).await;
        let email: serde_json::Value = response.json().await.unwrap();
        email["attempts"].as_u64() >= Some(1) && email["last_error"].is_string()
    })
    .await;
    let waiting = shop.get_as(Some(&shop.admin_token), &id).await;
    let waiting: serde_json::Value = waiting.json().await.unwrap();
    assert_eq!(waiting["status"], "pending", "{waiting}");
    assert!(waiting.get("sent_at").is_none(), "{waiting}");
    assert!(
        shop.metric("nubo_notifications_sent_total", &[r#"outcome="retry""#])
            .await
            >= 1.0
    );

    // The mail server comes up; the next attempt goes through.
    let mut shop = shop;
    shop.mail_server.as_mut().unwrap().up().await;
    let sent = shop.email_in_status(&id, "sent").await;
    assert!(sent["attempts"].as_u64().unwrap() >= 2, "{sent}");
    assert!(sent.get("last_error").is_none(), "{sent}");
    let mails = shop.mail_server.as_ref().unwrap().mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].header("To"), Some("otto@example.org"));
    shop.shutdown().await;
}

async fn an_email_is_marked_failed_after_its_last_attempt(mode: TestMode) {
    let shop = start_with(mode, Some(MailServer::down()), &[(SEND_ATTEMPTS, "2")]).await;
    let order = Order::new("pia@example.org");

    let event = shop.publish(&order.confirmed()).await;

    let email = shop.email_for(order.order_id, event.id).await;
    let failed = shop
        .email_in_status(email["id"].as_str().unwrap(), "failed")
        .await;
    assert_eq!(failed["attempts"], 2);
    let error = failed["last_error"].as_str().unwrap();
    assert!(!error.is_empty());
    assert!(failed.get("sent_at").is_none(), "{failed}");
    let listed = shop.list("?status=failed").await;
    assert_eq!(listed["items"][0]["id"], failed["id"]);
    assert_eq!(
        shop.metric("nubo_notifications_sent_total", &[r#"outcome="failed""#])
            .await,
        1.0
    );
    shop.shutdown().await;
}

/// Two replicas of notifications share one table: each email is claimed by one of them and
/// arrives once.
async fn two_replicas_send_each_email_once(mode: TestMode) {
    let server = MailServer::start().await;
    let url = server.url();
    let shop = start_with(mode, Some(server), &[]).await;
    // A second replica's mail outbox, over the same database and mail server.
    let config = Config::from_env(
        &BTreeMap::from([(SMTP_URL.to_owned(), url)]),
        nubo_platform::config::Mode::Distributed,
    )
    .unwrap();
    let metrics = NotificationMetrics::register(&Metrics::new("notifications"));
    let other = Mailer::new(config.smtp.as_ref().unwrap(), &config, metrics).unwrap();
    let db = shop.system.db("notifications").await;
    let stop = CancellationToken::new();
    let replica = tokio::spawn(other.run(db.clone(), stop.clone()));

    let mut written = Vec::new();
    for n in 0..24 {
        let order = Order::new(&format!("buyer{n}@example.org"));
        written.push((order.order_id, shop.publish(&order.confirmed()).await.id));
    }
    for (order_id, event_id) in written {
        let email = shop.email_for(order_id, event_id).await;
        let sent = shop
            .email_in_status(email["id"].as_str().unwrap(), "sent")
            .await;
        assert_eq!(sent["attempts"], 1, "{sent}");
    }

    let mails = shop.mail_server.as_ref().unwrap().mails();
    assert_eq!(mails.len(), 24);
    let ids: HashSet<&str> = mails
        .iter()
        .filter_map(|m| m.header("Message-ID"))
        .collect();
    assert_eq!(ids.len(), 24, "an email arrived twice");
    stop.cancel();
    replica.await.unwrap();
    db.close().await;
    shop.shutdown().await;
}
