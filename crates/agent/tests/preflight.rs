//! The agent refuses a Redis it cannot work with before it touches the network:
//! a user without a command redha needs is named, with the rule to add.

#[path = "../../health/tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{RedisServer, require_redis};

#[tokio::test]
async fn an_acl_user_without_client_pause_is_refused_at_start_naming_it() {
    if !require_redis("an_acl_user_without_client_pause_is_refused_at_start_naming_it") {
        return;
    }
    let redis = RedisServer::start(&[]);
    let rules = ["redha", "on", ">pw", "~*", "&*", "+@all", "-client|pause"];
    let mut args = vec!["ACL", "SETUSER"];
    args.extend(rules);
    redis.client().command(&args).await.expect("ACL SETUSER");
    let dir = common::TempDir::new("preflight");
    let config = dir.path.join("redha.toml");
    std::fs::write(
        &config,
        format!(
            "[vrrp]\ninterface = \"lo\"\nvirtual_router_id = 51\npriority = 100\nadvert_int = \"1s\"\nvirtual_ipaddresses = [\"192.0.2.100/24\"]\n\n[redis]\naddress = \"{}\"\nusername = \"redha\"\npassword = \"pw\"\n\n[replication]\npeer = \"192.0.2.12:6379\"\n\n[control]\nsocket = \"{}\"\n",
            redis.address(),
            dir.path.join("redha.sock").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_redha"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run redha");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("redha did not refuse the Redis within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("CLIENT PAUSE") && stderr.contains("+client|pause"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("VRRP") && !stderr.contains("socket"),
        "it touched the network first: {stderr}"
    );
}
