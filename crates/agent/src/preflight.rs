//! Before the agent touches the network: is the local Redis one it can work with
//! (version, and the commands its ACL user may run)? A Redis that is down now is
//! checked again by the coordinator when it answers.

use std::time::Duration;

use health::{Client, ClientOptions, PreflightError, RedisTarget};
use tracing::{info, warn};

/// What the check found.
#[derive(Debug)]
pub enum Verdict {
    /// Usable.
    Usable,
    /// Not usable: the message says what is missing.
    Refused(String),
    /// Could not be asked now (down, restarting): ask again later.
    Unknown,
}

/// Checks the Redis at `target`, each call bounded by `timeout`.
pub async fn check(target: &RedisTarget, timeout: Duration) -> Verdict {
    let options = ClientOptions {
        connect_timeout: timeout,
        response_timeout: timeout,
    };
    let mut client = Client::new(target.clone(), options);
    match health::preflight(&mut client).await {
        Ok(caps) => {
            info!(redis = %target.address, version = %caps.version, user = %caps.user, method = ?caps.method, unverified = ?caps.unverified, "the local Redis allows every command redha needs");
            Verdict::Usable
        }
        Err(PreflightError::Redis(e)) => {
            warn!(redis = %target.address, error = %e, "cannot check the local Redis's version and ACL now; checking again when it answers");
            Verdict::Unknown
        }
        Err(e) => Verdict::Refused(e.to_string()),
    }
}
