//! Witnesses: addresses on the clients' side of the network. One that answers a
//! TCP connection (accepting it, or refusing it: either way its host replied) shows
//! that this side of a partition is the connected one.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Does any of `addresses` answer within `timeout`? Tried together; true as soon
/// as one answers.
pub async fn any_answers(addresses: &[String], timeout: Duration) -> bool {
    let mut tries = JoinSet::new();
    for address in addresses.iter().cloned() {
        tries.spawn(async move {
            match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
                Ok(Ok(_)) => true,
                Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionRefused,
                Err(_) => false,
            }
        });
    }
    while let Some(answered) = tries.join_next().await {
        if answered.unwrap_or(false) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listener_or_a_refusal_answers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap().to_string();
        assert!(any_answers(&[open], Duration::from_secs(1)).await);
        // A port nobody listens on: the host refuses, so it answered.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        assert!(any_answers(&[closed], Duration::from_secs(1)).await);
        assert!(!any_answers(&[], Duration::from_secs(1)).await);
    }
}
