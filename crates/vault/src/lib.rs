//! The tokenization vault: an HTTPS API (axum + rustls) that turns card data into 24-hour
//! tokens, encrypted at rest (envelope encryption, AES-256-GCM) in an embedded SQLite store.
//!
//! Code map:
//! - [`api`]: the router ([`app`]), middleware (security headers, card-number-in-URL refusal,
//!   per-IP rate limit, access log) and handlers; [`api::error::ApiError`] is the only error
//!   clients see.
//! - [`state`]: shared state, authentication, authorization (roles, IP allowlists), audit,
//!   idempotency bookkeeping, background tasks (sweeper, key refresh, re-encryption).
//! - [`store`]: the storage interface and its SQLite implementation (writer thread, group commit).
//! - [`crypto`], [`keyring`], [`rotation`]: key hierarchy, envelope encryption, rotation.
//! - [`keys`]: API key kinds, modes, roles and the permission matrix.
//! - [`processor`]: the payment processor interface and the sandbox acquirer; payments,
//!   refunds, events and webhook delivery live in [`api::payments`], [`api::events`] and
//!   [`api::webhooks`].
//! - [`tls`], [`server`]: rustls configuration (TLS 1.2/1.3 only) and the TLS listener.
//! - [`bootstrap`]: data directories, master key, `init`.
//!
//! Invariants: no card number, last 8 digits, CVC or key material is ever logged, returned in an
//! error, or written to disk unencrypted; there is no plaintext HTTP listener.
#![forbid(unsafe_code)]

pub mod api;
pub mod bootstrap;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod devspace;
pub mod keyring;
pub mod keys;
pub mod processor;
pub mod ratelimit;
pub mod rotation;
pub mod secret;
pub mod server;
pub mod smtp;
pub mod state;
pub mod store;
pub mod text;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

pub use api::app;
pub use state::AppState;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::keyring::KeyringError;
use crate::store::Store;

/// Errors starting the server.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// Binding the listener failed.
    Bind(SocketAddr, std::io::Error),
    /// Loading keys failed (wrong master key, storage).
    Keys(KeyringError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bind(a, e) => write!(f, "cannot listen on {a}: {e}"),
            Self::Keys(e) => write!(f, "cannot load keys: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A running vault.
#[derive(Debug)]
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// Dev Space's bound address, when `config.devspace_listen` was set.
    pub devspace_addr: Option<SocketAddr>,
    /// Shared state.
    pub state: AppState,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    server: Option<tokio::task::JoinHandle<()>>,
    devspace_server: Option<tokio::task::JoinHandle<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting connections and background tasks.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    async fn stop(&mut self) {
        self.state.draining.store(true, std::sync::atomic::Ordering::Release);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if let Some(server) = self.devspace_server.take() {
            let _ = server.await;
        }
        for task in self.background.drain(..) {
            task.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        for task in self.background.drain(..) {
            task.abort();
        }
    }
}

/// Binds `listen`, builds the state and serves until [`Running::shutdown`].
pub async fn start(
    store: Arc<dyn Store>,
    master: Arc<MasterKey>,
    clock: Arc<dyn Clock>,
    mut config: Config,
    tls: Arc<rustls::ServerConfig>,
    listen: SocketAddr,
) -> Result<Running, StartError> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| StartError::Bind(listen, e))?;
    let addr = listener.local_addr().map_err(|e| StartError::Bind(listen, e))?;
    if config.public_origins.is_empty() {
        config.public_origins = server::default_public_origins(addr);
    }
    let timeouts = server::Timeouts { handshake: config.handshake_timeout, header: config.header_timeout };
    let limits =
        server::ConnectionLimits { total: config.max_connections, per_client: config.max_connections_per_client };
    let state = AppState::new(store, master, clock, config).await.map_err(StartError::Keys)?;
    let background = state.spawn_background();
    let router = app(state.clone());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let (mut devspace_addr, mut devspace_server) = (None, None);
    if let Some(listen) = state.config.devspace_listen {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| StartError::Bind(listen, e))?;
        devspace_addr = Some(listener.local_addr().map_err(|e| StartError::Bind(listen, e))?);
        let router = devspace::router(state.clone(), ::devspace::Settings::default());
        devspace_server = Some(tokio::spawn(server::serve(
            listener,
            Arc::clone(&tls),
            router,
            timeouts,
            limits,
            stopped(rx.clone()),
        )));
    }
    let server = tokio::spawn(server::serve(listener, tls, router, timeouts, limits, stopped(rx)));
    Ok(Running { addr, devspace_addr, state, shutdown: Some(tx), server: Some(server), devspace_server, background })
}
