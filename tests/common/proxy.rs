//! A TCP forwarder a test can cut and restore, to make a service unreachable for a while
//! (PostgreSQL, in the cluster's outage test) without touching the service itself.

use std::net::SocketAddr;

use tokio::net::{TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Forwards connections on `addr` to `target` while running.
pub struct Proxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on an ephemeral loopback port.
    pub async fn start(target: SocketAddr) -> Proxy {
        let mut proxy = Proxy {
            addr: "127.0.0.1:0".parse().expect("address"),
            target,
            task: None,
        };
        proxy.resume().await;
        proxy
    }

    /// Closes the port and every forwarded connection.
    pub fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn resume(&mut self) {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.bind(self.addr).expect("bind the proxy");
        let listener = socket.listen(64).expect("listen");
        self.addr = listener.local_addr().expect("local address");
        let target = self.target;
        self.task = Some(tokio::spawn(async move {
            // Dropped with the task: aborting it closes every connection.
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}
