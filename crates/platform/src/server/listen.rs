//! Accepting connections: the part of serving that happens before a request exists.
//!
//! axum's own `serve` has no timer, so a client that opens a connection and sends nothing, or
//! sends its headers a byte a minute, holds a task and a file descriptor for ever. Here every
//! connection is HTTP/1 with hyper's header read timeout, which since hyper 1.5 also bounds the
//! idle wait between requests on a kept-alive connection: a silent or slow client is cut off
//! after `header_timeout`. How many connections are open at once is bounded for the whole
//! listener and per client address, so many idle connections from one client cannot take the
//! descriptors everyone else needs; a connection over either bound is closed at once and counted.
//! On shutdown the listener closes, idle connections close, and requests in flight get the
//! deadline to finish.
//!
//! A service's port speaks plain HTTP and TLS side by side: the first byte of a connection tells
//! them apart (a TLS handshake starts with 0x16, an HTTP request with a method's letter). Probes,
//! metrics and public reads come plain; other services come with TLS and a client certificate,
//! and every request carries the [`Peer`] its connection proved.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::health::Health;
use crate::metrics::{ConnectionLabels, Metrics};
use crate::tls::{Peer, ServiceIdentity};

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Raises this process's soft limit of open files to its hard limit, as Go's runtime does: every
/// connection is a descriptor, and the common default of 1024 would make the descriptor table,
/// not [`ConnectionLimits`], decide who is served. Best effort: a failure is logged.
pub fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::debug!(error = %e, soft, hard, "cannot raise the open-file limit");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "cannot read the open-file limit"),
    }
}

/// Bounds on the connections of one listener.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may sit idle between requests.
    pub header_timeout: Duration,
    /// Connections open at once on this listener.
    pub max_connections: usize,
    /// Connections open at once from one client address; 0 for no bound (behind a proxy that
    /// is the only client, say).
    pub max_per_client: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(5),
            max_connections: 8192,
            max_per_client: 512,
        }
    }
}

/// How a listener serves.
#[derive(Clone)]
pub struct Serving {
    pub limits: ConnectionLimits,
    /// Accept TLS (next to plain HTTP) with this identity; `None`: plain HTTP only.
    pub tls: Option<ServiceIdentity>,
    pub metrics: Metrics,
    pub health: Health,
    /// How long requests in flight may take to finish after `shutdown`.
    pub deadline: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves; then `health` turns not ready, the
/// listener closes, and in-flight requests get the deadline to finish before they are cut off.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    serving: Serving,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Serving {
        limits,
        tls,
        metrics,
        health,
        deadline,
    } = serving;
    let gate = Gate::new(limits);
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was accepted: wait a
                    // moment rather than spin, and go on.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let slot = match gate.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(reason) => {
                metrics
                    .http_connections_refused
                    .get_or_create(&ConnectionLabels { reason })
                    .inc();
                tracing::debug!(%peer, reason, "connection refused");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let open = metrics.http_connections.clone();
        open.inc();
        let connection = Connection {
            builder: builder.clone(),
            watcher: graceful.watcher(),
            address: peer,
            app: app.clone(),
        };
        let tls = tls.clone();
        let handshake_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let served = match tls {
                None => connection
                    .serve(stream, Peer::Anonymous)
                    .await
                    .map_err(Into::into),
                Some(identity) => {
                    connection
                        .serve_tls_or_plain(stream, &identity, handshake_timeout)
                        .await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            open.dec();
            drop(slot);
        });
    }
    health.start_draining();
    drop(listener);
    if tokio::time::timeout(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?deadline,
            "in-flight requests did not finish before the shutdown deadline"
        );
    }
    Ok(())
}

/// One accepted connection, not yet served.
struct Connection {
    builder: hyper::server::conn::http1::Builder,
    watcher: hyper_util::server::graceful::Watcher,
    address: SocketAddr,
    app: Router,
}

impl Connection {
    /// TLS if the client starts a handshake, plain HTTP otherwise.
    async fn serve_tls_or_plain(
        self,
        stream: tokio::net::TcpStream,
        identity: &ServiceIdentity,
        timeout: Duration,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let mut first = [0u8; 1];
        match tokio::time::timeout(timeout, stream.peek(&mut first)).await {
            // Closed or silent before a byte: nothing to serve.
            Err(_) | Ok(Ok(0)) => return Ok(()),
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(_)) if first[0] != TLS_HANDSHAKE => {
                return self
                    .serve(stream, Peer::Anonymous)
                    .await
                    .map_err(Into::into);
            }
            Ok(Ok(_)) => {}
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config());
        let tls = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Err(_) => return Err("TLS handshake timed out".into()),
            Ok(Err(e)) => {
                tracing::debug!(peer = %self.address, error = %e, "TLS handshake refused");
                return Ok(());
            }
            Ok(Ok(tls)) => tls,
        };
        let peer = identity.peer_of(tls.get_ref().1);
        self.serve(tls, peer).await.map_err(Into::into)
    }

    /// HTTP/1 over `io`, each request carrying the client's address and who it proved to be.
    async fn serve<I>(self, io: I, peer: Peer) -> hyper::Result<()>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            builder,
            watcher,
            address,
            app,
        } = self;
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(address));
            request.extensions_mut().insert(peer.clone());
            app.clone().oneshot(request)
        });
        watcher
            .watch(builder.serve_connection(TokioIo::new(io), service))
            .await
    }
}

/// Counts open connections, in all and per client address.
struct Gate {
    limits: ConnectionLimits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; dropping it frees its place.
struct Slot {
    gate: Arc<Gate>,
    client: IpAddr,
}

impl Gate {
    fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Slot, &'static str> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let (total, per_client) = &mut *open;
        if *total >= self.limits.max_connections {
            return Err("server_full");
        }
        let mine = per_client.entry(client).or_insert(0);
        if self.limits.max_per_client > 0 && *mine >= self.limits.max_per_client {
            return Err("client_full");
        }
        *mine += 1;
        *total += 1;
        Ok(Slot {
            gate: self.clone(),
            client,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .gate
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (total, per_client) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(mine) = per_client.get_mut(&self.client) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                per_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_over_its_share_is_refused_while_others_are_admitted() {
        let gate = Gate::new(ConnectionLimits {
            header_timeout: Duration::from_secs(1),
            max_connections: 5,
            max_per_client: 2,
        });
        let greedy: IpAddr = [10, 0, 0, 1].into();
        let first = gate.admit(greedy).unwrap();
        let _second = gate.admit(greedy).unwrap();
        assert_eq!(gate.admit(greedy).err(), Some("client_full"));
        let _others: Vec<_> = (2..5)
            .map(|d| gate.admit([10, 0, 0, d].into()).unwrap())
            .collect();
        assert_eq!(gate.admit([10, 0, 0, 9].into()).err(), Some("server_full"));
        drop(first);
        assert!(gate.admit(greedy).is_ok());
    }
}
