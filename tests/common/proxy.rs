//! A loopback TCP proxy that can go silent (keeps every socket open but
//! forwards nothing, like a network path that drops packets) or cut every
//! open connection (a server restart as its clients see it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub port: u16,
    silent: Arc<AtomicBool>,
    accepted_while_silent: Arc<AtomicUsize>,
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Forwards 127.0.0.1:<port> to `target` ("host:port").
    pub async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = Arc::new(AtomicBool::new(false));
        let (cut, _) = watch::channel(0u64);
        let target = target.to_owned();
        let accepted_while_silent = Arc::new(AtomicUsize::new(0));
        let (silent2, cut2, accepted2) = (
            Arc::clone(&silent),
            cut.clone(),
            Arc::clone(&accepted_while_silent),
        );
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if silent2.load(Ordering::SeqCst) {
                    accepted2.fetch_add(1, Ordering::SeqCst);
                }
                let (silent, mut cut, target) =
                    (Arc::clone(&silent2), cut2.subscribe(), target.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::select! {
                        _ = pump(cr, sw, Arc::clone(&silent)) => {}
                        _ = pump(sr, cw, silent) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            silent,
            accepted_while_silent,
            cut,
            task,
        }
    }

    /// While on, bytes read from either side are discarded.
    pub fn set_silent(&self, on: bool) {
        self.silent.store(on, Ordering::SeqCst);
    }

    /// Connections accepted while silent (a client trying to reconnect).
    pub fn accepted_while_silent(&self) -> usize {
        self.accepted_while_silent.load(Ordering::SeqCst)
    }

    /// Closes every connection open now.
    pub fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// `url` with its `host:port` replaced by this proxy's address.
    pub fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let userinfo = authority
            .rsplit_once('@')
            .map(|(u, _)| format!("{u}@"))
            .unwrap_or_default();
        format!("{scheme}://{userinfo}127.0.0.1:{}{path}", self.port)
    }
}

/// `host:port` of a URL.
pub fn target_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority)
        .to_owned()
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, silent: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if !silent.load(Ordering::SeqCst) && to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
