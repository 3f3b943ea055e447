//! Supervision: a task of the agent that ends without being asked to is logged at
//! ERROR, the agent steps down (priority 0, so that the backup takes over after
//! Skew_Time; VIPs removed) and exits non-zero, so that systemd restarts it.
//!
//! The real cause: the control socket's path taken by another socket (a second agent
//! started with the same file). A deleted control socket is created again instead.
//! For the tasks that nothing real ends (the VRRP loop, the coordinator, the metrics
//! listener), debug builds cancel the task named by `REDHA_DEBUG_ABORT_ON_USR2` on
//! SIGUSR2.

use std::os::unix::net::UnixListener;
use std::process::Command;
use std::time::{Duration, Instant};

use netns_tests::redha::{self, MARGIN, Node, VIP};
use netns_tests::{Lab, Proc, redha_bin, require_netns, wait_until};

const POLL: Duration = Duration::from_millis(50);

/// Starts redha on host `i` like [`redha::start`], with extra environment.
fn start_with_env(lab: &Lab, i: usize, node: &Node, env: &[(&str, &str)]) -> Proc {
    redha::start_file(lab, i, &redha::write_config(lab, i, node), env)
}

fn status_ok(lab: &Lab, i: usize) -> bool {
    Command::new(redha_bin())
        .arg("status")
        .arg("--socket")
        .arg(redha::control_socket(lab, i))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Host 1 master (priority 100), host 2 backup (priority 90).
fn pair(lab: &Lab, n1: &Node, env: &[(&str, &str)]) -> (Proc, Proc) {
    let master = start_with_env(lab, 1, n1, env);
    wait_until(n1.master_down_interval() + MARGIN, POLL, || {
        lab.holders(VIP) == [1]
    })
    .expect("host 1 is master");
    let backup = redha::start(lab, 2, &Node::with_priority(90));
    wait_until(MARGIN, POLL, || backup.log().contains("to=BACKUP")).expect("host 2 is backup");
    (master, backup)
}

/// After something ended a task of the master at `at`: the master logged it at
/// ERROR, removed the VIP, said priority 0 (the backup took over within its
/// Skew_Time, well before Master_Down_Interval) and exited non-zero.
fn check_stepped_down(lab: &Lab, master: &Proc, backup: &Proc, at: Instant, what: &str) {
    let backup_node = Node::with_priority(90);
    let bound = Duration::from_secs(3) + backup_node.skew_time() + MARGIN;
    wait_until(bound, POLL, || lab.holders(VIP) == [2]).unwrap_or_else(|| {
        panic!(
            "{what}: the backup did not take over: holders {:?}\nmaster:\n{}\nbackup:\n{}",
            lab.holders(VIP),
            master.log(),
            backup.log()
        )
    });
    let took_over = at.elapsed();
    let status = master
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{what}: the master did not exit:\n{}", master.log()));
    assert!(!status.success(), "{what}: exited with {status}");
    let log = master.log();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("ENDED unexpectedly")),
        "{what}: no ERROR line:\n{log}"
    );
    assert!(log.contains("virtual address removed"), "{what}:\n{log}");
    let backup_log = backup.log();
    assert!(
        backup_log.contains("master sent priority 0"),
        "{what}: the backup did not hear priority 0:\n{backup_log}"
    );
    assert!(
        took_over < backup_node.master_down_interval(),
        "{what}: the takeover took {took_over:?}, not less than Master_Down_Interval"
    );
    eprintln!("{what}: the backup held the VIP {took_over:?} after the task ended");
}

#[test]
fn a_deleted_control_socket_is_created_again_and_a_replaced_one_stops_the_agent() {
    if !require_netns(
        "a_deleted_control_socket_is_created_again_and_a_replaced_one_stops_the_agent",
    ) {
        return;
    }
    let lab = Lab::new("superv", 2);
    let n1 = Node::with_priority(100);
    let (master, backup) = pair(&lab, &n1, &[]);
    let socket = redha::control_socket(&lab, 1);
    assert!(status_ok(&lab, 1));

    // Deleted: created again within about a second; nothing else happens.
    std::fs::remove_file(&socket).unwrap();
    wait_until(Duration::from_secs(3), POLL, || status_ok(&lab, 1))
        .unwrap_or_else(|| panic!("the control socket is created again:\n{}", master.log()));
    assert!(
        master
            .log()
            .contains("the control socket was deleted: creating it again")
    );
    assert!(master.is_running());
    assert_eq!(lab.holders(VIP), [1]);

    // Replaced by another process's socket: the master steps down and exits.
    std::fs::remove_file(&socket).unwrap();
    let other = UnixListener::bind(&socket).unwrap();
    let at = Instant::now();
    check_stepped_down(&lab, &master, &backup, at, "control socket replaced");
    assert!(
        master.log().contains("is another file now"),
        "{}",
        master.log()
    );
    // The other process's socket is left alone.
    assert!(
        socket.exists(),
        "the agent removed a socket that was not its own"
    );
    drop(other);
}

#[test]
fn a_task_that_ends_makes_the_agent_step_down_and_exit_non_zero() {
    if !require_netns("a_task_that_ends_makes_the_agent_step_down_and_exit_non_zero") {
        return;
    }
    // Debug builds only: the hook does nothing in a release build.
    if !redha_bin().to_string_lossy().contains("/debug/") {
        eprintln!("skipped: the debug-only task hook needs a debug build of redha");
        return;
    }
    for task in ["vrrp", "coordinator", "transitions", "metrics"] {
        let lab = Lab::new(&format!("end{task}"), 2);
        let n1 = Node {
            extra: "\n[metrics]\nlisten = \"127.0.0.1:9150\"\n".into(),
            ..Node::with_priority(100)
        };
        let (master, backup) = pair(&lab, &n1, &[("REDHA_DEBUG_ABORT_ON_USR2", task)]);
        assert!(master.signal(libc::SIGUSR2));
        let at = Instant::now();
        check_stepped_down(&lab, &master, &backup, at, task);
        if task == "vrrp" {
            // The loop was gone: the agent stepped down for it.
            assert!(
                master
                    .log()
                    .contains("priority-0 advert sent (stepping down for a stopped instance)"),
                "{}",
                master.log()
            );
        }
    }
}
