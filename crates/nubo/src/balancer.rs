//! A TCP balancer in front of a service's replicas, as kube-proxy is for a Kubernetes Service:
//! each new connection goes to the next replica that takes it; bytes pass untouched, so TLS
//! stays end to end. It doubles as a fault proxy (what toxiproxy does): a chaos run can make it
//! add latency, refuse connections, or cut them after the request went through, so that the
//! answer is lost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The faults a balancer injects, changed at run time; none by default.
#[derive(Debug, Default)]
pub struct Toxics {
    latency_ms: AtomicU64,
    /// Of every thousand new connections, how many are closed at once.
    refuse_per_mille: AtomicU32,
    /// Of every thousand, how many are closed as the answer starts to come back.
    cut_per_mille: AtomicU32,
}

impl Toxics {
    pub fn set(&self, latency: Duration, refuse_per_mille: u32, cut_per_mille: u32) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.latency_ms.store(ms, Ordering::Relaxed);
        self.refuse_per_mille
            .store(refuse_per_mille.min(1000), Ordering::Relaxed);
        self.cut_per_mille
            .store(cut_per_mille.min(1000), Ordering::Relaxed);
    }

    pub fn clear(&self) {
        self.set(Duration::ZERO, 0, 0);
    }

    fn roll(per_mille: &AtomicU32) -> bool {
        let p = per_mille.load(Ordering::Relaxed);
        p > 0 && rand::random_range(0..1000) < p
    }
}

/// Accepts on `front` and passes each connection to the next back end that takes it, with
/// whatever `toxics` say, until `token` is cancelled.
pub async fn balance(front: u16, backs: Vec<u16>, toxics: Arc<Toxics>, token: CancellationToken) {
    let listener = match TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], front))).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("nubo: cannot listen on 127.0.0.1:{front}: {e}");
            return;
        }
    };
    let mut next = 0usize;
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => break,
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok((down, _)) = accepted else {
            continue;
        };
        if Toxics::roll(&toxics.refuse_per_mille) {
            drop(down);
            continue;
        }
        next = next.wrapping_add(1);
        let order: Vec<u16> = (0..backs.len())
            .map(|i| backs[(next + i) % backs.len()])
            .collect();
        let toxics = toxics.clone();
        connections.spawn(async move {
            for port in order {
                if let Ok(up) = TcpStream::connect(("127.0.0.1", port)).await {
                    pass(down, up, &toxics).await;
                    return;
                }
            }
        });
    }
    connections.abort_all();
}

/// Copies both ways until either side closes.
async fn pass(mut down: TcpStream, mut up: TcpStream, toxics: &Toxics) {
    let _ = up.set_nodelay(true);
    let _ = down.set_nodelay(true);
    let latency = Duration::from_millis(toxics.latency_ms.load(Ordering::Relaxed));
    let cut = Toxics::roll(&toxics.cut_per_mille);
    if latency.is_zero() && !cut {
        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
        return;
    }
    let (mut down_read, mut down_write) = down.into_split();
    let (mut up_read, mut up_write) = up.into_split();
    let request = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match down_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    tokio::time::sleep(latency).await;
                    if up_write.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = up_write.shutdown().await;
    };
    let answer = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match up_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                // The request went through; its answer is lost on the way back.
                Ok(_) if cut => break,
                Ok(n) => {
                    tokio::time::sleep(latency).await;
                    if down_write.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = down_write.shutdown().await;
    };
    if cut {
        // The connection ends both ways as soon as the answer is dropped.
        tokio::select! {
            _ = request => {}
            _ = answer => {}
        }
    } else {
        tokio::join!(request, answer);
    }
}
