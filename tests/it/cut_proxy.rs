//! A loopback TCP proxy in front of MariaDB that can cut every connection
//! and refuse new ones — the database gone for one client only — and let
//! them through again. Used where one agent must lose the database while
//! the test (and other agents) keep it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct CutProxy {
    /// The database URL through the proxy.
    pub url: String,
    down: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl CutProxy {
    /// Proxies the server of the database URL `db_url`.
    pub async fn start(db_url: &str) -> Self {
        let mut url = url::Url::parse(db_url).expect("a database URL");
        let upstream = format!(
            "{}:{}",
            url.host_str().expect("a host"),
            url.port().unwrap_or(3306)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(port)).unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (d, l) = (Arc::clone(&down), Arc::clone(&links));
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                // Checked under the lock `cut` drains: a connection is
                // either refused here or dropped there, never missed.
                let mut links = l.lock().unwrap();
                if d.load(Ordering::SeqCst) {
                    continue; // refused: the connection closes at once
                }
                let upstream = upstream.clone();
                links.push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        Self {
            url: url.to_string(),
            down,
            links,
            accept,
        }
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        let mut links = self.links.lock().unwrap();
        self.down.store(true, Ordering::SeqCst);
        for link in links.drain(..) {
            link.abort();
        }
    }

    /// Lets new connections through again.
    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
