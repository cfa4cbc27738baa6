//! Notifications: the emails and text messages a customer gets about an order. It consumes the
//! order and payment events, writes one email per confirmed order, cancelled order and refund,
//! and one text message per confirmed or cancelled order whose customer gave a mobile number
//! (once per event id and channel, however often the event is delivered). Emails go over SMTP
//! from a mail outbox when a server is configured (always in distributed mode); texts go from
//! their own outbox through an SMS provider ([`sms`]; the simulated one by default). Every
//! message is kept for admins to look up.
//!
//! `OrderPlaced` writes no email, since the checkout may still fail, but it tells notifications
//! who placed the order: a `PaymentRefunded` names only the order, and is addressed from that.
#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
pub mod emails;
pub mod events;
pub mod mail_outbox;
pub mod metrics;
pub mod outbox;
pub mod routes;
pub mod sms;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use routes::openapi;

use nubo_contracts::orders::{OrderCancelled, OrderConfirmed, OrderPlaced};
use nubo_contracts::payments::PaymentRefunded;
use nubo_platform::events::Event;
use nubo_platform::events::consumer::Consumer;
use nubo_platform::storage::Migrations;
use nubo_platform::{Consumes, Context, Parts, ServiceDescription, Task, sqlx};

use crate::config::{
    Config, DEFAULT_FROM, DEFAULT_SMS_PROVIDER, FROM, SEND_ATTEMPTS, SEND_CONCURRENCY,
    SMS_PROVIDER, SMTP_URL,
};
use crate::events::Writer;
use crate::mail_outbox::Mailer;
use crate::metrics::NotificationMetrics;
use crate::sms::Texter;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The durable consumers, one per subject.
pub const ORDERS_PLACED_CONSUMER: &str = "notifications-orders-placed";
pub const ORDERS_CONFIRMED_CONSUMER: &str = "notifications-orders-confirmed";
pub const ORDERS_CANCELLED_CONSUMER: &str = "notifications-orders-cancelled";
pub const PAYMENTS_REFUNDED_CONSUMER: &str = "notifications-payments-refunded";

pub static SERVICE: ServiceDescription = ServiceDescription {
    name: "notifications",
    migrations: Migrations {
        sqlite: &SQLITE,
        postgres: &POSTGRES,
    },
    publishes: &[],
    consumes: &[
        Consumes {
            durable: ORDERS_PLACED_CONSUMER,
            subject: OrderPlaced::SUBJECT,
        },
        Consumes {
            durable: ORDERS_CONFIRMED_CONSUMER,
            subject: OrderConfirmed::SUBJECT,
        },
        Consumes {
            durable: ORDERS_CANCELLED_CONSUMER,
            subject: OrderCancelled::SUBJECT,
        },
        Consumes {
            durable: PAYMENTS_REFUNDED_CONSUMER,
            subject: PaymentRefunded::SUBJECT,
        },
    ],
    env: &[
        (
            SMTP_URL,
            "SMTP server emails are sent to (smtp://host:port, smtps://user:password@host, \
             smtp://host?tls=required); a secret, never logged. Required in distributed mode; \
             unset in embedded mode, emails are only recorded",
            "unset",
        ),
        (FROM, "the From mailbox of every email", DEFAULT_FROM),
        (
            SEND_ATTEMPTS,
            "attempts to send one email (over SMTP) or text message (to the SMS provider), 1 to \
             50, with doubling waits from 1 s up to 10 min, before it is marked failed",
            "8",
        ),
        (
            SEND_CONCURRENCY,
            "emails one replica sends at once, each over its own reused SMTP session (1 to 64)",
            "16",
        ),
        (
            SMS_PROVIDER,
            "the SMS provider text messages go through: `simulated`, a provider in the process \
             that texts nobody and keeps what it receives (admins read it at \
             /api/v1/admin/notifications/sms-gateway)",
            DEFAULT_SMS_PROVIDER,
        ),
    ],
    check_env: Some(|env, mode| Config::from_env(env, mode).map(|_| ())),
    build: |ctx| Box::pin(build(ctx)),
    openapi: Some(openapi),
    seed: None,
    cache_holds_data: false,
    knobs: &sms::simulated::KNOBS,
};

async fn build(ctx: Context) -> anyhow::Result<Parts> {
    let config = Config::from_env(&ctx.env, ctx.settings.mode())?;
    let metrics = NotificationMetrics::register(&ctx.metrics);
    let writer = Writer {
        sending: config.smtp.is_some(),
        metrics: metrics.clone(),
    };
    let mut tasks = Vec::new();
    if let Some(smtp) = &config.smtp {
        let mailer = Mailer::new(smtp, &config, metrics.clone())?;
        let db = ctx.db.clone();
        tasks.push(Task::new("notifications-mail-outbox", move |token| {
            mailer.run(db, token)
        }));
    }
    let gateway = sms::gateway(&config, &ctx.db, Some(ctx.ops.switches()));
    let texter = Texter::new(gateway, &config, metrics);
    let db = ctx.db.clone();
    tasks.push(Task::new("notifications-sms-outbox", move |token| {
        texter.run(db, token)
    }));
    Ok(Parts {
        router: routes::router(ctx),
        consumers: consumers(writer),
        tasks,
    })
}

/// The consumers notifications runs, one per subject in [`SERVICE`]'s `consumes`. Public so a
/// test can hand an event to one directly, as a redelivery would.
pub fn consumers(writer: Writer) -> Vec<Consumer> {
    vec![
        Consumer::new(
            ORDERS_PLACED_CONSUMER,
            OrderPlaced::SUBJECT,
            events::LearnPlacedOrders,
        ),
        Consumer::new(
            ORDERS_CONFIRMED_CONSUMER,
            OrderConfirmed::SUBJECT,
            events::NotifyConfirmedOrders(writer.clone()),
        ),
        Consumer::new(
            ORDERS_CANCELLED_CONSUMER,
            OrderCancelled::SUBJECT,
            events::NotifyCancelledOrders(writer.clone()),
        ),
        Consumer::new(
            PAYMENTS_REFUNDED_CONSUMER,
            PaymentRefunded::SUBJECT,
            events::EmailRefunds(writer),
        ),
    ]
}
