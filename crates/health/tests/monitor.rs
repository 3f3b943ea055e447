//! The health monitor against real redis-server processes.

mod common;

use std::time::{Duration, Instant};

use common::{RedisServer, require_redis};
use health::{CheckConfig, Health, Observation, RedisTarget, monitor};
use tokio::sync::watch;

/// Waits until an observation satisfies `pred`; panics after `timeout`.
async fn wait_for(
    rx: &mut watch::Receiver<Observation>,
    timeout: Duration,
    what: &str,
    pred: impl FnMut(&Observation) -> bool,
) -> Observation {
    let result = tokio::time::timeout(timeout, rx.wait_for(pred))
        .await
        .map(|r| r.map(|obs| obs.clone()));
    match result {
        Ok(Ok(obs)) => obs,
        Ok(Err(_)) => panic!("monitor stopped while waiting for {what}"),
        Err(_) => panic!(
            "timed out ({timeout:?}) waiting for {what}; last: {:?}",
            *rx.borrow()
        ),
    }
}

/// SIGKILL is noticed through the dropped connection: down after about
/// `fast_recheck` (fall 2: the loss, then a refused recheck), long before the
/// next regular check. Up again after a restart, which shows as a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_redis_is_down_at_once_and_up_after_restart() {
    if !require_redis("killed_redis_is_down_at_once_and_up_after_restart") {
        return;
    }
    let mut server = RedisServer::start(&[]);
    let config = CheckConfig {
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(500),
        fall: 2,
        rise: 2,
        fast_recheck: Duration::from_millis(100),
    };
    let handle = monitor::spawn(server.target(), config.clone());
    let mut rx = handle.subscribe();
    assert_eq!(rx.borrow().health, Health::Unknown);

    let up = wait_for(&mut rx, Duration::from_secs(5), "up", |o| {
        o.health == Health::Up
    })
    .await;
    let change = up.change.as_ref().expect("the change is reported");
    assert_eq!((change.from, change.to), (Health::Unknown, Health::Up));
    let first = up.snapshot.as_ref().expect("snapshot").clone();
    assert!(up.latency.is_some());
    assert_eq!(up.last_error, None);
    assert!(!up.restarted);

    // Kill right after a regular check, so the next one is ~1 s away.
    rx.mark_unchanged();
    tokio::time::timeout(Duration::from_secs(3), rx.changed())
        .await
        .expect("no check within 3 s")
        .unwrap();
    let killed = Instant::now();
    server.kill();
    let down = wait_for(&mut rx, Duration::from_secs(3), "down", |o| {
        o.health == Health::Down
    })
    .await;
    let took = killed.elapsed();
    eprintln!("down {took:?} after SIGKILL (fall 2, fast_recheck 100ms)");
    assert!(
        took < config.fast_recheck * config.fall + Duration::from_millis(250),
        "{took:?}"
    );
    let change = down.change.as_ref().unwrap();
    assert_eq!((change.from, change.to), (Health::Up, Health::Down));
    assert!(change.reason.contains("2 consecutive failed checks"));
    assert!(
        change.reason.contains("connection refused"),
        "{}",
        change.reason
    );
    assert_eq!(down.consecutive_failures, 2);
    assert!(down.snapshot.is_none());
    assert!(
        down.last_error
            .as_ref()
            .unwrap()
            .contains(&server.address())
    );

    // Nothing to notify while down: the refused checks come every interval.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still = rx.borrow().clone();
    assert_eq!(still.health, Health::Down);
    assert!(
        still.consecutive_failures <= 4,
        "rechecks too fast while down: {}",
        still.consecutive_failures
    );

    server.restart();
    let up = wait_for(&mut rx, Duration::from_secs(5), "up again", |o| {
        o.health == Health::Up
    })
    .await;
    assert!(up.restarts >= 1);
    assert_eq!(up.previous_run_id.as_deref(), Some(first.run_id.as_str()));
    let now = up.snapshot.as_ref().unwrap();
    assert_ne!(now.run_id, first.run_id);
    assert!(now.is_fresh_empty());
    drop(handle);
}

/// The run_id change is visible in the first successful observation after a
/// restart, even when the restart is too quick for the health to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_restart_is_reported() {
    if !require_redis("quick_restart_is_reported") {
        return;
    }
    let mut server = RedisServer::start(&[]);
    let handle = monitor::spawn(
        server.target(),
        CheckConfig {
            interval: Duration::from_millis(200),
            fall: 3,
            rise: 1,
            ..CheckConfig::default()
        },
    );
    let mut rx = handle.subscribe();
    let up = wait_for(&mut rx, Duration::from_secs(5), "up", |o| {
        o.health == Health::Up
    })
    .await;
    let old = up.snapshot.unwrap().run_id;
    server.restart();
    let seen = wait_for(&mut rx, Duration::from_secs(5), "restart", |o| o.restarted).await;
    assert_eq!(seen.previous_run_id.as_deref(), Some(old.as_str()));
    assert_ne!(seen.snapshot.as_ref().unwrap().run_id, old);
    assert_eq!(seen.restarts, 1);
    // fall 3: one lost connection and one refused recheck at most.
    assert_eq!(seen.health, Health::Up);
}

/// A paused (SIGSTOP) Redis: every check fails after `timeout`, none hangs;
/// down after `fall` of them, up again after SIGCONT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_redis_times_out() {
    if !require_redis("paused_redis_times_out") {
        return;
    }
    let server = RedisServer::start(&[]);
    let config = CheckConfig {
        interval: Duration::from_millis(300),
        timeout: Duration::from_millis(200),
        fall: 2,
        rise: 2,
        fast_recheck: Duration::from_millis(100),
    };
    let handle = monitor::spawn(server.target(), config.clone());
    let mut rx = handle.subscribe();
    wait_for(&mut rx, Duration::from_secs(5), "up", |o| {
        o.health == Health::Up
    })
    .await;
    {
        let _paused = server.pause();
        let paused = Instant::now();
        let failed = wait_for(&mut rx, Duration::from_secs(3), "a failed check", |o| {
            o.last_error.is_some()
        })
        .await;
        let took = paused.elapsed();
        let error = failed.last_error.unwrap();
        assert!(error.contains("no reply within 200ms"), "{error}");
        assert!(
            took < config.interval + config.timeout + Duration::from_millis(200),
            "{took:?}"
        );
        let down = wait_for(&mut rx, Duration::from_secs(3), "down", |o| {
            o.health == Health::Down
        })
        .await;
        let took = paused.elapsed();
        eprintln!("paused redis down after {took:?}");
        assert!(
            took < config.interval * 2 + config.timeout + Duration::from_millis(300),
            "{took:?}"
        );
        // The reconnect to the paused server times out too.
        assert!(
            down.last_error.as_ref().unwrap().contains("timed out"),
            "{:?}",
            down.last_error
        );
    }
    let up = wait_for(&mut rx, Duration::from_secs(5), "up after SIGCONT", |o| {
        o.health == Health::Up
    })
    .await;
    assert!(!up.restarted);
    assert_eq!(up.restarts, 0);
}

/// Nothing listening at start: down after fall fast rechecks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_down_quickly() {
    if !require_redis("nothing_listening_is_down_quickly") {
        return;
    }
    let mut server = RedisServer::start(&[]);
    server.kill();
    let started = Instant::now();
    let handle = monitor::spawn(server.target(), CheckConfig::default());
    let mut rx = handle.subscribe();
    let down = wait_for(&mut rx, Duration::from_secs(3), "down", |o| {
        o.health == Health::Down
    })
    .await;
    assert!(started.elapsed() < Duration::from_millis(600));
    let change = down.change.unwrap();
    assert_eq!((change.from, change.to), (Health::Unknown, Health::Down));
}

/// A Redis that refuses our credentials is down (and says why).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_down() {
    if !require_redis("wrong_password_is_down") {
        return;
    }
    let server = RedisServer::start(&["--requirepass", "s3cret"]);
    let handle = monitor::spawn(
        RedisTarget::new(server.address()).with_password("xyzzy"),
        CheckConfig {
            interval: Duration::from_millis(100),
            ..CheckConfig::default()
        },
    );
    let mut rx = handle.subscribe();
    let down = wait_for(&mut rx, Duration::from_secs(3), "down", |o| {
        o.health == Health::Down
    })
    .await;
    let error = down.last_error.unwrap();
    assert!(error.contains("authentication failed"), "{error}");
    assert!(!error.contains("xyzzy"), "password in message: {error}");

    let good = monitor::spawn(
        RedisTarget::new(server.address()).with_password("s3cret"),
        CheckConfig {
            interval: Duration::from_millis(100),
            ..CheckConfig::default()
        },
    );
    let mut rx = good.subscribe();
    wait_for(&mut rx, Duration::from_secs(3), "up", |o| {
        o.health == Health::Up
    })
    .await;
}
