//! Test support shared by the integration tests.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

/// A TCP relay to a port on loopback that a test can cut (close every connection and stop
/// listening: clients see resets, then refusals) and restore on the same port.
pub struct TcpRelay {
    address: SocketAddr,
    upstream: u16,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl TcpRelay {
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let address = listener.local_addr().expect("relay address");
        let relay = Self {
            address,
            upstream,
            tasks: Arc::new(Mutex::new(JoinSet::new())),
        };
        relay.serve(listener).await;
        relay
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    async fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream;
        let tasks = self.tasks.clone();
        self.tasks.lock().await.spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                tasks.lock().await.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
    }

    pub async fn cut(&self) {
        self.tasks.lock().await.abort_all();
        // Aborted tasks drop their sockets (and the listener) when they are next polled.
        while self.tasks.lock().await.join_next().await.is_some() {}
    }

    pub async fn restore(&self) {
        let listener = TcpListener::bind(self.address).await.expect("rebind relay");
        self.serve(listener).await;
    }
}
