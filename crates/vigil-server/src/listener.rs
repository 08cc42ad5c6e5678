//! The TLS accept loop: rustls handshake (client certificate optional), the verified peer
//! identity put into each request's extensions, HTTP/1.1 and HTTP/2 by ALPN, graceful stop.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use vigil_pki::ServerTls;

use crate::state::PeerInfo;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: usize = 16_384;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(15);

pub(crate) async fn serve(listener: TcpListener, tls: ServerTls, app: Router, mut shutdown: watch::Receiver<bool>) {
    let tls = Arc::new(tls);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (tcp, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(peer = %addr, "connection limit reached; dropping connection");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(tls.config());
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!(peer = %addr, error = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::info!(peer = %addr, "TLS handshake timed out");
                    return;
                }
            };
            let agent = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| vigil_pki::agent_id_from_cert(c.as_ref()));
            let agent = match agent {
                None => None,
                Some(Ok(id)) => Some(id),
                Some(Err(e)) => {
                    // The chain verified, so this is our CA's certificate without a usable id.
                    tracing::warn!(peer = %addr, error = %e, "client certificate has no valid agent id");
                    return;
                }
            };
            let peer = PeerInfo { addr, agent };
            let svc = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                req.extensions_mut().insert(peer.clone());
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.oneshot(req).await.unwrap_or_else(|e| match e {})) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            // A client that opens a connection and dribbles headers must not hold it forever.
            builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            builder.http2().timer(TokioTimer::new()).max_concurrent_streams(64);
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(peer = %addr, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("open connections did not finish in time; closing them"),
    }
}
