//! A real SMTP server for tests (feature `testing`): Debian's `python3-aiosmtpd`, storing what it
//! receives in a Maildir. Notifications' own tests and the shop's end-to-end stories use it. A
//! machine without it fails those tests with the command that installs it; they never pass
//! without having talked SMTP.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PYTHON: &str = "/usr/bin/python3";

/// One email as the server stored it.
#[derive(Debug)]
pub struct Mail {
    /// Header names in lower case, folded lines joined.
    pub headers: Vec<(String, String)>,
    /// With `\n` line ends.
    pub body: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn parse(raw: &str) -> Self {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        Self {
            headers,
            body: body.to_owned(),
        }
    }
}

/// An SMTP server on a loopback port, stopped when dropped.
pub struct MailServer {
    pub port: u16,
    maildir: tempfile::TempDir,
    child: Option<Child>,
}

impl MailServer {
    /// A server that accepts mail now.
    pub async fn start() -> Self {
        let mut server = Self::down();
        server.up().await;
        server
    }

    /// A port for a server that is not running yet: connections to it are refused until
    /// [`MailServer::up`].
    pub fn down() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let maildir = tempfile::tempdir().expect("a temporary Maildir");
        // Python's Maildir creates its subfolders only along with a folder that does not exist.
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir(maildir.path().join(sub)).expect("a Maildir subfolder");
        }
        Self {
            port,
            maildir,
            child: None,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Starts the server on its port and waits until it accepts connections.
    pub async fn up(&mut self) {
        require_aiosmtpd();
        let mut child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.maildir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start aiosmtpd");
        for _ in 0..200 {
            if let Some(status) = child.try_wait().expect("aiosmtpd status") {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    use std::io::Read;
                    let _ = pipe.read_to_string(&mut stderr);
                }
                panic!("aiosmtpd exited ({status}) on port {}: {stderr}", self.port);
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return;
            }
            nubo_platform::tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("aiosmtpd did not listen on port {} in 10 s", self.port);
    }

    /// Every email received so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        let new = self.maildir.path().join("new");
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&new) {
            Ok(entries) => entries.filter_map(|e| Some(e.ok()?.path())).collect(),
            Err(_) => Vec::new(),
        };
        // Maildir names start with the delivery time in seconds; ties are rare and harmless.
        files.sort();
        files
            .iter()
            .map(|f| Mail::parse(&std::fs::read_to_string(f).expect("read a delivered email")))
            .collect()
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Panics with the fix when the SMTP server the tests use is not installed.
fn require_aiosmtpd() {
    let found = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "the SMTP tests need a real SMTP server: `{PYTHON} -m aiosmtpd` is missing; \
         install it with `apt-get install -y python3-aiosmtpd` (.ci/run does)"
    );
}
