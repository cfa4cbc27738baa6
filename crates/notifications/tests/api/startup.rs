//! Bad configuration stops notifications before it serves, with a message naming the variable.

use std::collections::BTreeMap;

use nubo_notifications::config::{FROM, SEND_ATTEMPTS, SMS_PROVIDER, SMTP_URL};
use nubo_platform::config::{Backing, Mode, Settings};
use nubo_platform::testing::{fresh_postgres_database, nats_url, redis_url};
use nubo_platform::tokio_util::sync::CancellationToken;
use nubo_platform::{Application, Wiring};

#[test]
fn bad_values_are_refused_before_any_port_opens() {
    let check = nubo_notifications::SERVICE.check_env.unwrap();
    for (name, value) in [
        (SMTP_URL, "mailto:shop@example.org"),
        (SMTP_URL, "smtp://"),
        (FROM, "the shop"),
        (SEND_ATTEMPTS, "0"),
        (SMS_PROVIDER, "twilio"),
    ] {
        let env = BTreeMap::from([(name.to_owned(), value.to_owned())]);
        let error = format!("{:#}", check(&env, Mode::Embedded).unwrap_err());
        assert!(error.contains(name), "{name}={value}: {error}");
    }
    let fine = BTreeMap::from([(SMTP_URL.to_owned(), "smtp://127.0.0.1:2525".to_owned())]);
    check(&fine, Mode::Distributed).unwrap();
    // Without a server: fine embedded (emails are recorded), refused distributed.
    check(&BTreeMap::new(), Mode::Embedded).unwrap();
    let error = format!(
        "{:#}",
        check(&BTreeMap::new(), Mode::Distributed).unwrap_err()
    );
    assert!(
        error.contains(&format!("{SMTP_URL}: is required in distributed mode")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL, NATS and Redis: run by .ci/run"]
async fn distributed_mode_without_a_mail_server_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::embedded(dir.path());
    settings.backing = Backing::Distributed {
        database_url: fresh_postgres_database().await,
        nats_url: nats_url(),
        redis_url: redis_url(),
    };
    settings.namespace = format!(
        "t{}",
        &nubo_platform::uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let ca = nubo_platform::tls::authority::Authority::open(&dir.path().join("tls")).unwrap();
    settings.tls_dir = Some(ca.ensure("notifications", &settings.trust_domain).unwrap());
    let app = Application::bind(&nubo_notifications::SERVICE, settings, BTreeMap::new())
        .await
        .unwrap();
    let wiring = Wiring {
        service_urls: BTreeMap::from([("identity".to_owned(), "https://127.0.0.1:9".to_owned())]),
        embedded_bus: None,
    };
    let error = app
        .run_until_stopped(wiring, CancellationToken::new())
        .await
        .unwrap_err();
    let error = format!("{error:#}");
    assert!(error.contains("notifications failed to start"), "{error}");
    assert!(
        error.contains(&format!("{SMTP_URL}: is required in distributed mode")),
        "{error}"
    );
}
