//! What an operator's probes see when the database goes away and comes back.

use std::time::Duration;

use nubo_platform::both_modes;
use nubo_platform::config::Backing;
use nubo_platform::testing::{Proxy, TestMode};

use crate::helpers::start_with;

both_modes!(readiness_follows_the_database);

async fn readyz(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("{url}/readyz")).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn wait_for_status(url: &str, status: u16) -> serde_json::Value {
    for _ in 0..150 {
        let (got, body) = readyz(url).await;
        if got == status {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/readyz never answered {status}");
}

async fn readiness_follows_the_database(mode: TestMode) {
    // Distributed: the service reaches PostgreSQL through a proxy the test can cut.
    let proxy = match mode {
        TestMode::Embedded => None,
        TestMode::Distributed => {
            let url = nubo_platform::testing::fresh_postgres_database().await;
            Some(Proxy::in_front_of(&url).await)
        }
    };
    let proxied_url = proxy.as_ref().map(|(_, url)| url.clone());
    let system = start_with(mode, move |s| {
        if let (Backing::Distributed { database_url, .. }, Some(url)) =
            (&mut s.backing, &proxied_url)
        {
            *database_url = url.clone();
        }
    })
    .await;
    let url = system.url("catalog");
    assert_eq!(readyz(&url).await.0, 200);

    let data_dir = match &system.settings().backing {
        Backing::Embedded { data_dir } => Some(data_dir.clone()),
        Backing::Distributed { .. } => None,
    };
    let (file, moved) = data_dir
        .map(|d| (d.join("catalog.db"), d.join("catalog.db.moved")))
        .unzip();
    match (&proxy, &file) {
        (Some((proxy, _)), _) => proxy.cut(),
        (None, Some(file)) => std::fs::rename(file, moved.as_ref().unwrap()).unwrap(),
        _ => unreachable!(),
    }
    let body = wait_for_status(&url, 503).await;
    assert_eq!(body["checks"]["database"], "failing", "{body}");
    assert_eq!(body["checks"]["bus"], "ok", "{body}");
    // Liveness is not readiness: the process is fine, restarting it would not help.
    assert_eq!(
        reqwest::get(format!("{url}/livez")).await.unwrap().status(),
        200
    );

    match (&proxy, &file) {
        (Some((proxy, _)), _) => proxy.restore(),
        (None, Some(file)) => std::fs::rename(moved.as_ref().unwrap(), file).unwrap(),
        _ => unreachable!(),
    }
    let body = wait_for_status(&url, 200).await;
    assert_eq!(body["checks"]["database"], "ok");
    system.shutdown().await;
}
