//! What the browser tests share: chromedriver and a headless Debian Chromium, and the few
//! moves a user makes (click, type, wait for text), each failing with what the page showed.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};

/// How long the page may take to show what a step leads to.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub async fn click(browser: &Client, css: &str) {
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

pub async fn type_into(browser: &Client, css: &str, text: &str) {
    let field = browser.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// The text of `css` once it contains `expected`, polling the page; on time out, fails with what
/// the page showed, and its status message.
pub async fn until_text(browser: &Client, css: &str, expected: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = String::new();
    while Instant::now() < deadline {
        if let Ok(element) = browser.find(Locator::Css(css)).await {
            seen = element.text().await.unwrap_or_default();
            if seen.contains(expected) {
                return seen;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let message = match browser.find(Locator::Css("#message")).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    panic!("{css} never showed {expected:?}; it shows {seen:?}; the status message is {message:?}");
}

/// Saves a screenshot of the page as `name` in `target/tmp/{folder}/` and fails on any serious
/// or critical axe-core violation.
pub async fn look(browser: &Client, axe: &str, folder: &str, name: &str) {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    let png = browser.screenshot().await.unwrap();
    let file = dir.join(format!("{name}.png"));
    std::fs::write(&file, png).unwrap();
    println!("screenshot: {}", file.display());
    browser.execute(axe, vec![]).await.unwrap();
    let found = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
               .then(r => done(r.violations
                 .filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ': ' + v.help + ' (' + v.nodes.map(n => n.target.join(' ')).join(', ') + ')')))
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(found, json!([]), "axe-core on {name}");
}

/// axe-core's script: `NUBO_TEST_AXE`, or where `.ci/run` installs it.
pub fn axe_core() -> String {
    let path = std::env::var("NUBO_TEST_AXE").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/axe/node_modules/axe-core/axe.min.js"
        )
        .to_owned()
    });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is missing ({path}: {e}): install it with \
             `npm install --prefix target/axe axe-core@4.14.1`, or set NUBO_TEST_AXE to its axe.min.js"
        )
    })
}

/// chromedriver on a free loopback port, killed on drop.
pub struct Chromedriver {
    process: Child,
    port: u16,
}

impl Chromedriver {
    pub fn start() -> Self {
        let driver = required(
            "NUBO_TEST_CHROMEDRIVER",
            "/usr/bin/chromedriver",
            "chromium-driver",
        );
        required("NUBO_TEST_CHROMIUM", "/usr/bin/chromium", "chromium");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let logs = if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit
        } else {
            Stdio::null
        };
        let process = Command::new(&driver)
            .arg(format!("--port={port}"))
            // Its own process group, which the browsers it starts stay in: dropping it ends
            // them all, even when a failed test never closed its session.
            .process_group(0)
            .stdout(logs())
            .stderr(logs())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {driver}: {e}"));
        let driver = Self { process, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver never listened on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    /// A new headless Chromium session.
    pub async fn browser(&self) -> Client {
        let chromium = std::env::var("NUBO_TEST_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                // --no-sandbox: CI and containers run as root; --disable-dev-shm-usage: a
                // container's /dev/shm is often too small for a renderer.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1280,1000"],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium ({chromium}): {e}"))
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let group = Pid::from_raw(self.process.id() as i32);
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.process.wait();
    }
}

/// The path in `variable`, or `default`; fails, naming the Debian package, when it is missing.
fn required(variable: &str, default: &str, package: &str) -> String {
    let path = std::env::var(variable).unwrap_or(default.into());
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: install Debian's package {package} \
         (`apt-get install -y chromium chromium-driver`), or set {variable} to where it is"
    );
    path
}
