//! VRRP routers on a simulated LAN, through virtual time: the election invariants of
//! DESIGN.md (1: one holder; 2: a faulted node never holds; 5: start-up order does not
//! matter; 7: a killed node's VIP goes away by itself) and the timing bounds of
//! RFC 3768 (Master_Down_Interval, Skew_Time).

use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::subsequence;
use redha_tests::{
    Happening, Lan, NodeId, Process, ResumeOrder, Segment, host_address, router_config,
};
use vrrp::{RouterConfig, State, Version};

/// Slack added to protocol bounds that are exact in virtual time.
const EPSILON: Duration = Duration::from_millis(10);
const HOUR: Duration = Duration::from_secs(3600);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn config(host: u8, priority: u8) -> RouterConfig {
    router_config(host, priority)
}

fn configs(priorities: &[u8]) -> Vec<RouterConfig> {
    priorities
        .iter()
        .enumerate()
        .map(|(i, &p)| config(10 + u8::try_from(i).unwrap(), p))
        .collect()
}

fn with_interval(mut configs: Vec<RouterConfig>, secs: u64) -> Vec<RouterConfig> {
    for c in &mut configs {
        c.advert_int = Duration::from_secs(secs);
    }
    configs
}

fn with_preempt(mut configs: Vec<RouterConfig>, preempt: bool) -> Vec<RouterConfig> {
    for c in &mut configs {
        c.preempt = preempt;
    }
    configs
}

/// The router the RFC elects among `ids`: the highest priority, then the highest
/// primary address.
fn best(lan: &Lan, ids: impl IntoIterator<Item = NodeId>) -> NodeId {
    ids.into_iter()
        .max_by_key(|&id| (lan.config(id).priority, lan.config(id).primary_address))
        .expect("some router")
}

/// Starts every router at once and runs until the slowest Master_Down_Interval (plus
/// the link delays of the resolution) has passed; returns the elected router.
fn elect(lan: &mut Lan) -> NodeId {
    lan.start_all();
    lan.run_for(lan.max_master_down_interval() + EPSILON);
    let winner = best(lan, lan.ids());
    assert_eq!(lan.holders(), [winner], "election\n{}", lan.dump());
    winner
}

fn advert_int(lan: &Lan) -> Duration {
    lan.config(0).advert_int
}

// ------------------------------------------------------------------ invariant 1

/// From simultaneous start-up: one holder after the slowest Master_Down_Interval, the
/// one the RFC elects, and only it for an hour.
fn one_holder_for_an_hour(configs: Vec<RouterConfig>) {
    one_holder_for(configs, HOUR);
}

/// [`one_holder_for_an_hour`], for `span`.
fn one_holder_for(configs: Vec<RouterConfig>, span: Duration) {
    let real = std::time::Instant::now();
    let mut lan = Lan::with_routers(configs);
    let t0 = lan.now();
    lan.start_all();
    let winner = best(&lan, lan.ids());
    let settled = t0 + lan.max_master_down_interval() + EPSILON;
    lan.run_until(settled);
    assert_eq!(lan.holders(), [winner], "{}", lan.dump());
    assert_eq!(lan.masters(), [winner], "{}", lan.dump());
    let priority = lan.config(winner).priority;
    let distinct = lan
        .ids()
        .filter(|&id| lan.config(id).priority == priority)
        .count()
        == 1;
    if distinct {
        // The highest priority has the shortest Master_Down_Interval: it alone takes
        // over, right when its timer runs out.
        assert_eq!(
            lan.transitions_to(State::Master, t0),
            [(t0 + lan.master_down_interval(winner), winner)],
            "{}",
            lan.dump()
        );
    }
    lan.run_until_with(settled + span, |lan| {
        assert_eq!(lan.holders(), [winner], "{}", lan.dump());
    });
    assert_eq!(lan.transitions_to(State::Master, settled), []);
    assert_eq!(lan.masters(), [winner]);
    // A master advertises every interval for the whole span, and renews its lease.
    let adverts = u128::from(lan.adverts_sent(winner));
    assert!(
        adverts >= span.as_millis() / advert_int(&lan).as_millis(),
        "{adverts}"
    );
    let elapsed = real.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[test]
fn two_routers_elect_the_higher_priority_for_an_hour() {
    one_holder_for_an_hour(configs(&[100, 150]));
}

#[test]
fn three_routers_elect_the_highest_priority_for_an_hour() {
    one_holder_for_an_hour(configs(&[120, 200, 50]));
    one_holder_for_an_hour(with_interval(configs(&[120, 200, 50]), 3));
}

#[test]
fn ten_routers_elect_the_highest_priority_for_an_hour() {
    // Adjacent priorities too: their Skew_Times differ by 1/256 s, more than the link
    // delay.
    one_holder_for_an_hour(configs(&[10, 250, 30, 170, 90, 60, 249, 120, 140, 1]));
}

#[test]
fn equal_priorities_elect_the_highest_address() {
    one_holder_for_an_hour(vec![config(5, 100), config(30, 100), config(12, 100)]);
    one_holder_for_an_hour(vec![config(7, 100), config(3, 100)]);
    let ten: Vec<RouterConfig> = [9, 4, 77, 21, 3, 50, 8, 60, 2, 11]
        .into_iter()
        .map(|host| config(host, 100))
        .collect();
    one_holder_for_an_hour(ten);
    // Equal priorities only among the losers, and the winner with preempt off.
    one_holder_for_an_hour(with_preempt(
        vec![config(5, 90), config(6, 90), config(4, 91)],
        false,
    ));
}

// ------------------------------------------------------------------ invariant 5

/// Starts router `i` at `starts[i]` after time zero, in the order of those times.
fn start_at(lan: &mut Lan, starts: &[Duration]) {
    let mut order: Vec<NodeId> = lan.ids().collect();
    order.sort_by_key(|&id| starts[id]);
    for id in order {
        let at = lan.at(starts[id]);
        lan.run_until(at);
        lan.start(id);
    }
}

#[test]
fn any_start_order_elects_the_highest_priority_with_preempt() {
    // Every order of three routers, 1.5 s apart.
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        let mut lan = Lan::with_routers(configs(&[100, 200, 150]));
        let mut starts = [Duration::ZERO; 3];
        for (rank, &id) in order.iter().enumerate() {
            starts[id] = secs(1.5) * u32::try_from(rank).unwrap();
        }
        start_at(&mut lan, &starts);
        lan.run_for(lan.max_master_down_interval() + EPSILON);
        assert_eq!(lan.holders(), [1], "order {order:?}\n{}", lan.dump());
        lan.run_for_with(Duration::from_secs(60), |lan| {
            assert_eq!(lan.holders(), [1], "order {order:?}\n{}", lan.dump());
        });
    }
}

#[test]
fn without_preempt_the_first_master_keeps_the_vip_while_others_join() {
    // The lowest priority starts first and is master when the others come.
    let mut lan = Lan::with_routers(with_preempt(configs(&[50, 200, 150]), false));
    let starts = [Duration::ZERO, secs(5.0), secs(7.0)];
    start_at(&mut lan, &starts);
    lan.run_until_with(lan.at(secs(60.0)), |lan| {
        if lan.now() > lan.at(lan.master_down_interval(0)) {
            assert_eq!(lan.holders(), [0], "{}", lan.dump());
        }
    });
    assert_eq!(
        lan.transitions_to(State::Master, lan.base()),
        [(lan.at(lan.master_down_interval(0)), 0)]
    );
}

/// Distinct priorities (2 to 6 routers) and start offsets within five seconds.
fn shuffled_starts() -> impl Strategy<Value = (Vec<u8>, Vec<u64>)> {
    (2usize..=6).prop_flat_map(|n| {
        (
            subsequence((1u8..=254).collect::<Vec<_>>(), n).prop_shuffle(),
            proptest::collection::vec(0u64..5000, n),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// With preempt everywhere, whatever the order: the highest priority ends up the
    /// only holder, at the latest Skew_Time after its own Master_Down_Interval.
    #[test]
    fn shuffled_start_up_with_preempt((priorities, offsets) in shuffled_starts()) {
        let mut lan = Lan::with_routers(configs(&priorities));
        let starts: Vec<Duration> = offsets.iter().map(|&ms| Duration::from_millis(ms)).collect();
        start_at(&mut lan, &starts);
        let top = best(&lan, lan.ids());
        // A priority-0 advert just before its timer runs out can re-arm it with Skew_Time.
        let stable = lan.at(starts[top]) + lan.master_down_interval(top) + lan.skew_time(top)
            + lan.link_delay() * 3;
        let end = lan.at(secs(5.0)) + lan.max_master_down_interval() + Duration::from_secs(30);
        lan.run_until_with(end, |lan| {
            if lan.now() >= stable {
                assert_eq!(lan.holders(), [top], "{}", lan.dump());
            }
        });
        prop_assert_eq!(lan.holders(), [top]);
    }

    /// With preempt nowhere: the first router whose Master_Down_Interval runs out
    /// becomes master and keeps the VIP while the others join (if several take over
    /// within one link delay, the RFC's master-to-master rule picks among them).
    #[test]
    fn shuffled_start_up_without_preempt((priorities, offsets) in shuffled_starts()) {
        let mut lan = Lan::with_routers(with_preempt(configs(&priorities), false));
        let starts: Vec<Duration> = offsets.iter().map(|&ms| Duration::from_millis(ms)).collect();
        let expiry = |id: NodeId| lan.at(starts[id]) + lan.master_down_interval(id);
        let first = lan.ids().map(expiry).min().unwrap();
        let candidates: Vec<NodeId> =
            lan.ids().filter(|&id| expiry(id) <= first + lan.link_delay()).collect();
        let winner = best(&lan, candidates.iter().copied());
        start_at(&mut lan, &starts);
        let stable = first + lan.link_delay() * 3;
        let end = lan.at(secs(5.0)) + lan.max_master_down_interval() + Duration::from_secs(30);
        lan.run_until_with(end, |lan| {
            if lan.now() >= stable {
                assert_eq!(lan.holders(), [winner], "{}", lan.dump());
            }
        });
        let mut masters: Vec<NodeId> = lan
            .transitions_to(State::Master, lan.base())
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        masters.sort_unstable();
        prop_assert_eq!(&masters[..], &candidates[..]);
        prop_assert_eq!(lan.holders(), [winner]);
    }
}

// ------------------------------------------------------------------ invariant 7

/// Kills the master `phase` after the election and checks the takeover and the lease.
fn kill_the_master(configs: Vec<RouterConfig>, phase: Duration) {
    let mut lan = Lan::with_routers(configs);
    let master = elect(&mut lan);
    lan.run_for(advert_int(&lan) * 5 + phase);
    let killed = lan.now();
    lan.kill(master);
    let next = best(&lan, lan.ids().filter(|&id| id != master));
    // Backups of equal priority run out of Master_Down_Interval at the same instant
    // and both take over; the RFC's master-to-master rule settles it one link delay
    // later. Otherwise there is never more than one live holder.
    let tie = lan
        .ids()
        .filter(|&id| id != master && id != next)
        .any(|id| lan.config(id).priority == lan.config(next).priority);
    let bound = lan.master_down_interval(next) + lan.link_delay();
    let end = killed + lan.lease(master).max(bound) + Duration::from_secs(10);
    lan.run_until_with(end, |lan| {
        if !tie {
            assert!(lan.live_holders().len() <= 1, "{}", lan.dump());
        }
    });
    let context = format!("phase {phase:?}\n{}", lan.dump());
    // The best remaining backup takes over within its Master_Down_Interval.
    let (taken, who) = lan
        .first_transition_to(State::Master, killed)
        .unwrap_or_else(|| panic!("nobody took over\n{context}"));
    assert!(taken > killed, "{context}");
    assert!(
        taken - killed <= bound,
        "took {:?}\n{context}",
        taken - killed
    );
    if tie {
        let live_overlap = lan.time_with_several_live_holders(killed, end);
        assert!(
            live_overlap <= lan.link_delay(),
            "{live_overlap:?}\n{context}"
        );
    } else {
        assert_eq!(who, next, "{context}");
        assert_eq!(
            lan.transitions_to(State::Master, killed).len(),
            1,
            "{context}"
        );
        assert!(lan.max_live_holders(killed, end) <= 1, "{context}");
    }
    // Invariant 7: the dead one's address goes away by itself within its lease.
    let gone = lan
        .history()
        .iter()
        .find(|c| c.at >= killed && !c.holders.contains(&master))
        .map(|c| c.at)
        .unwrap_or_else(|| panic!("the VIP outlived its lease\n{context}"));
    assert!(
        gone - killed <= lan.lease(master),
        "gone after {:?}\n{context}",
        gone - killed
    );
    // The dead holder and the new one overlap for less than a second: the lease is
    // Master_Down_Interval rounded up to whole seconds.
    let overlap = lan.time_with_several_holders(killed, end);
    assert!(
        overlap < Duration::from_secs(1),
        "overlap {overlap:?}\n{context}"
    );
    assert_eq!(lan.holders(), [next], "{context}");
}

#[test]
fn a_killed_master_is_replaced_and_its_vip_expires() {
    let phases = [0, 1, 250, 500, 999].map(Duration::from_millis);
    for phase in phases {
        kill_the_master(configs(&[200, 100]), phase);
        kill_the_master(configs(&[200, 150, 100]), phase);
        kill_the_master(configs(&[100, 200, 150, 1]), phase);
        kill_the_master(with_interval(configs(&[200, 150, 100]), 3), phase * 3);
        kill_the_master(with_preempt(configs(&[150, 254, 100]), false), phase);
        kill_the_master(vec![config(5, 100), config(9, 100), config(7, 100)], phase);
    }
}

#[test]
fn a_killed_master_that_restarts_takes_its_vip_back() {
    let mut lan = Lan::with_routers(configs(&[200, 100]));
    elect(&mut lan);
    lan.kill(0);
    lan.run_for(Duration::from_secs(2));
    lan.start(0);
    assert!(!lan.holds(0), "a restart removes the stale VIP");
    lan.run_for(lan.master_down_interval(0) + lan.link_delay() * 2);
    assert_eq!(lan.holders(), [0], "{}", lan.dump());
}

// ------------------------------------------------------------------ stopped (SIGSTOP)

/// The master's process stops for `pause` and resumes, handling its overdue timer
/// or the adverts that waited in its socket first (`order`). From the moment it
/// resumes there is never more than one holder (but for a preemption's link
/// delay); a stop shorter than
/// Master_Down_Interval changes nothing; after a longer one it is a backup of the
/// router that took over, which keeps the VIP without preempt and yields it after
/// one Master_Down_Interval with preempt.
fn pause_the_master(preempt: bool, pause: Duration, order: ResumeOrder) {
    let mut lan = Lan::with_routers(with_preempt(configs(&[150, 100]), preempt));
    let master = elect(&mut lan);
    let backup = 1 - master;
    lan.run_for(advert_int(&lan) * 5 + secs(0.3));
    lan.pause(master);
    lan.run_for(pause);
    let resumed = lan.now();
    lan.resume(master, order);
    let context = |lan: &Lan| {
        format!(
            "preempt {preempt}, pause {pause:?}, {order:?}\n{}",
            lan.dump()
        )
    };
    assert!(lan.holders().len() <= 1, "{}", context(&lan));
    let mdi = lan.master_down_interval(master);
    let end = resumed + mdi * 3;
    // Without preempt, never two holders; with preempt, the taking back overlaps
    // for one link delay as every preemption does (the old master yields when our
    // advert reaches it).
    lan.run_until_with(end, |lan| {
        assert!(preempt || lan.holders().len() <= 1, "{}", context(lan));
    });
    let overlap = lan.time_with_several_holders(resumed, end);
    assert!(
        overlap <= lan.link_delay(),
        "{overlap:?}\n{}",
        context(&lan)
    );
    let taken_over = lan.first_transition_to(State::Master, resumed - pause);
    if pause < mdi {
        assert_eq!(taken_over, None, "{}", context(&lan));
        assert_eq!(lan.holders(), [master], "{}", context(&lan));
        return;
    }
    let since_resume: Vec<_> = lan.transitions_to(State::Master, resumed);
    if preempt {
        assert_eq!(lan.holders(), [master], "{}", context(&lan));
        let &[(at, who)] = since_resume.as_slice() else {
            panic!("one takeover after the resume expected\n{}", context(&lan));
        };
        assert_eq!(who, master);
        assert!(at >= resumed + mdi, "{}", context(&lan));
    } else {
        assert_eq!(lan.holders(), [backup], "{}", context(&lan));
        assert!(since_resume.is_empty(), "{}", context(&lan));
    }
    assert!(
        lan.timeline()
            .iter()
            .any(|r| r.node == master && matches!(r.what, Happening::Stalled { .. })),
        "{}",
        context(&lan)
    );
}

#[test]
fn a_stopped_master_resumes_without_a_second_holder() {
    for preempt in [false, true] {
        for pause in [secs(2.0), secs(3.9), secs(10.0), secs(60.0)] {
            for order in [ResumeOrder::TimersFirst, ResumeOrder::FramesFirst] {
                pause_the_master(preempt, pause, order);
            }
        }
    }
}

/// A stopped backup that resumes while the master still runs stays a backup,
/// whichever it handles first.
#[test]
fn a_stopped_backup_resumes_as_a_backup() {
    for order in [ResumeOrder::TimersFirst, ResumeOrder::FramesFirst] {
        let mut lan = Lan::with_routers(configs(&[150, 100]));
        let master = elect(&mut lan);
        let backup = 1 - master;
        lan.pause(backup);
        lan.run_for(secs(30.0));
        let resumed = lan.now();
        lan.resume(backup, order);
        lan.run_for_with(secs(20.0), |lan| {
            assert_eq!(lan.holders(), [master], "{order:?}\n{}", lan.dump());
        });
        assert!(
            lan.transitions_to(State::Master, resumed).is_empty(),
            "{order:?}\n{}",
            lan.dump()
        );
    }
}

// ------------------------------------------------------------------ graceful stop

fn shut_the_master_down(configs: Vec<RouterConfig>, phase: Duration) {
    let mut lan = Lan::with_routers(configs);
    let master = elect(&mut lan);
    lan.run_for(advert_int(&lan) * 5 + phase);
    let stopped = lan.now();
    lan.shutdown(master);
    assert!(!lan.holds(master), "the VIP is released at once");
    assert_eq!(lan.state(master), State::Initialize);
    let next = best(&lan, lan.ids().filter(|&id| id != master));
    let end = stopped + Duration::from_secs(30);
    lan.run_until_with(end, |lan| {
        assert!(lan.holders().len() <= 1, "{}", lan.dump())
    });
    let (taken, who) = lan
        .first_transition_to(State::Master, stopped)
        .expect("someone takes over");
    assert_eq!(who, next, "{}", lan.dump());
    // Priority 0 makes the backups wait Skew_Time instead of Master_Down_Interval.
    assert!(
        taken - stopped <= lan.skew_time(next) + lan.link_delay(),
        "took {:?}\n{}",
        taken - stopped,
        lan.dump()
    );
    assert_eq!(lan.time_with_several_holders(stopped, end), Duration::ZERO);
    assert_eq!(lan.holders(), [next]);
}

#[test]
fn a_shut_down_master_hands_over_within_skew_time() {
    for phase in [0, 400, 999].map(Duration::from_millis) {
        shut_the_master_down(configs(&[200, 100]), phase);
        shut_the_master_down(configs(&[200, 150, 100]), phase);
        shut_the_master_down(with_interval(configs(&[200, 150, 100]), 3), phase);
        shut_the_master_down(with_preempt(configs(&[254, 1, 253]), false), phase);
    }
}

// ------------------------------------------------------------------ invariant 2

#[test]
fn a_faulted_master_releases_at_once_and_comes_back_after_the_fault() {
    let mut lan = Lan::with_routers(configs(&[200, 150, 100]));
    elect(&mut lan);
    lan.run_for(secs(4.3));
    let fault = lan.now();
    lan.enter_fault(0, "redis down");
    assert_eq!(lan.state(0), State::Fault);
    assert!(!lan.holds(0), "the VIP is released at once");
    let cleared = fault + Duration::from_secs(60);
    lan.run_until_with(cleared, |lan| {
        assert!(!lan.holds(0), "{}", lan.dump());
        assert_eq!(lan.state(0), State::Fault);
    });
    let (taken, who) = lan.first_transition_to(State::Master, fault).unwrap();
    assert_eq!(who, 1, "{}", lan.dump());
    assert!(
        taken - fault <= lan.skew_time(1) + lan.link_delay(),
        "took {:?}",
        taken - fault
    );
    assert_eq!(lan.holders(), [1]);

    lan.leave_fault(0, "redis up");
    assert_eq!(lan.state(0), State::Backup);
    let end = cleared + Duration::from_secs(60);
    lan.run_until(end);
    // Preemption: the old master yields when the new one's first advert arrives.
    assert!(lan.time_with_several_holders(cleared, end) <= lan.link_delay());
    // The highest priority preempts again once its Master_Down_Interval has run out.
    let (back, who) = lan.first_transition_to(State::Master, cleared).unwrap();
    assert_eq!(who, 0);
    assert_eq!(
        back,
        cleared + lan.master_down_interval(0),
        "{}",
        lan.dump()
    );
    assert_eq!(lan.holders(), [0]);
}

#[test]
fn a_router_started_in_fault_stays_out_until_cleared() {
    let mut lan = Lan::with_routers(configs(&[200, 100]));
    lan.enter_fault(0, "redis down at boot");
    lan.start_all();
    assert_eq!(lan.state(0), State::Fault);
    lan.run_for_with(Duration::from_secs(30), |lan| assert!(!lan.holds(0)));
    assert_eq!(lan.holders(), [1]);
    let cleared = lan.now();
    lan.leave_fault(0, "redis up");
    lan.run_for(lan.master_down_interval(0) + lan.link_delay() * 2);
    assert_eq!(lan.holders(), [0], "{}", lan.dump());
    assert_eq!(
        lan.first_transition_to(State::Master, cleared),
        Some((cleared + lan.master_down_interval(0), 0))
    );
}

/// A phantom advert: after `gap_ms`, from 192.0.2.`host` with `priority`.
fn phantom_adverts() -> impl Strategy<Value = Vec<(u64, u8, u8)>> {
    proptest::collection::vec((0u64..1500, 200u8..=203, any::<u8>()), 0..80)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Invariant 2: whatever adverts fly around (any priority, 0 and 255 included,
    /// from hosts that are not routers), a router in Fault never holds the VIP and
    /// stays in Fault; cleared, it is a backup again.
    #[test]
    fn a_faulted_router_never_holds_the_vip(
        faulty in 0usize..3,
        fault_ms in 0u64..8000,
        adverts in phantom_adverts(),
    ) {
        let mut lan = Lan::with_routers(configs(&[200, 150, 100]));
        lan.start_all();
        let check = move |lan: &Lan| {
            if !lan.is_healthy(faulty) {
                assert!(!lan.holds(faulty), "{}", lan.dump());
                assert_eq!(lan.state(faulty), State::Fault, "{}", lan.dump());
            }
        };
        lan.run_until_with(lan.at(Duration::from_millis(fault_ms)), check);
        lan.enter_fault(faulty, "redis down");
        check(&lan);
        for (gap, host, priority) in adverts {
            lan.run_for_with(Duration::from_millis(gap), check);
            lan.inject_advert(0, host_address(host), priority, 1);
        }
        lan.run_for_with(Duration::from_secs(10), check);
        lan.leave_fault(faulty, "redis up");
        prop_assert_eq!(lan.state(faulty), State::Backup);
    }
}

// ------------------------------------------------------------------ partitions

/// Elects, splits the LAN into `groups` (segments 1, 2, ...), checks that each side
/// elects its best, heals `phase` later and checks that one holder remains within an
/// advert interval plus the link delay.
fn split_and_heal(configs: Vec<RouterConfig>, groups: &[&[NodeId]], phase: Duration) {
    let mut lan = Lan::with_routers(configs);
    let winner = elect(&mut lan);
    lan.partition(groups);
    lan.run_for(lan.max_master_down_interval() + Duration::from_secs(5) + phase);
    let rest: Vec<NodeId> = lan
        .ids()
        .filter(|id| groups.iter().all(|g| !g.contains(id)))
        .collect();
    let mut expected_holders = Vec::new();
    for side in groups.iter().copied().chain([&rest[..]]) {
        if side.is_empty() {
            continue;
        }
        let side_winner = best(&lan, side.iter().copied());
        let side_masters: Vec<NodeId> = lan
            .masters()
            .into_iter()
            .filter(|id| side.contains(id))
            .collect();
        assert_eq!(side_masters, [side_winner], "side {side:?}\n{}", lan.dump());
        expected_holders.push(side_winner);
    }
    expected_holders.sort_unstable();
    assert_eq!(
        lan.holders(),
        expected_holders,
        "while split\n{}",
        lan.dump()
    );
    let healed = lan.now();
    lan.heal();
    let bound = healed + advert_int(&lan) + lan.link_delay();
    let settled = lan.run_until_true(bound, |lan| lan.holders().len() == 1);
    let context = format!("groups {groups:?} phase {phase:?}\n{}", lan.dump());
    let settled = settled.unwrap_or_else(|| panic!("still several holders\n{context}"));
    assert_eq!(lan.holders(), [winner], "{context}");
    lan.run_until_with(settled + Duration::from_secs(60), |lan| {
        assert_eq!(lan.holders(), [winner], "{}", lan.dump());
    });
    // The winner tells the LAN again where the VIP is (the loser's neighbours may point
    // at the loser), as soon as it hears the loser's claim or its priority 0.
    let garp = lan.timeline().iter().find(|r| {
        r.at >= healed && r.node == winner && r.what == Happening::GratuitousArp { conflict: true }
    });
    let garp = garp.unwrap_or_else(|| panic!("no gratuitous ARP after the heal\n{}", lan.dump()));
    assert!(
        garp.at <= healed + advert_int(&lan) + lan.link_delay() * 2,
        "{context}"
    );
}

#[test]
fn a_healed_split_of_two_keeps_one_holder() {
    for phase in [0, 1, 300, 700, 999].map(Duration::from_millis) {
        for preempt in [true, false] {
            split_and_heal(with_preempt(configs(&[200, 100]), preempt), &[&[1]], phase);
            split_and_heal(with_preempt(configs(&[200, 100]), preempt), &[&[0]], phase);
            // Equal priorities: the higher address wins.
            let equal = vec![config(9, 100), config(20, 100)];
            split_and_heal(with_preempt(equal.clone(), preempt), &[&[0]], phase);
            split_and_heal(with_preempt(equal, preempt), &[&[1]], phase);
            split_and_heal(
                with_interval(with_preempt(configs(&[200, 100]), preempt), 3),
                &[&[1]],
                phase * 3,
            );
        }
    }
}

#[test]
fn a_healed_split_of_three_keeps_one_holder() {
    for phase in [0, 1, 300, 700, 999].map(Duration::from_millis) {
        for preempt in [true, false] {
            let three = || with_preempt(configs(&[200, 150, 100]), preempt);
            split_and_heal(three(), &[&[0]], phase);
            split_and_heal(three(), &[&[1]], phase);
            split_and_heal(three(), &[&[2]], phase);
            split_and_heal(three(), &[&[0], &[1], &[2]], phase);
            let equal = vec![config(9, 100), config(20, 100), config(15, 100)];
            split_and_heal(with_preempt(equal.clone(), preempt), &[&[1]], phase);
            split_and_heal(with_preempt(equal, preempt), &[&[0, 2]], phase);
        }
    }
}

#[test]
fn an_unplugged_router_elects_itself_and_yields_when_plugged_back() {
    let mut lan = Lan::with_routers(configs(&[100, 200]));
    elect(&mut lan);
    lan.disconnect(0);
    lan.run_for(Duration::from_secs(10));
    assert_eq!(lan.holders(), [0, 1]);
    lan.connect(0, 0);
    lan.run_for(advert_int(&lan) + lan.link_delay());
    assert_eq!(lan.holders(), [1], "{}", lan.dump());
}

// ------------------------------------------------------------------ preempt_delay

fn join_with_preempt_delay(delay: Duration, phase: Duration) {
    let mut lan = Lan::new();
    let low = lan.add_router(config(10, 100));
    let high = lan.add_router(RouterConfig {
        preempt_delay: delay,
        ..config(20, 200)
    });
    lan.start(low);
    lan.run_for(Duration::from_secs(10) + phase);
    let joined = lan.now();
    lan.start(high);
    let allowed = joined + delay;
    lan.run_until_with(allowed, |lan| {
        assert_ne!(lan.state(high), State::Master, "{}", lan.dump());
        assert_eq!(lan.holders(), [low], "{}", lan.dump());
    });
    let bound = allowed + lan.master_down_interval(high) + lan.link_delay();
    let done = lan.run_until_true(bound, |lan| lan.holders() == [high]);
    let context = format!("delay {delay:?} phase {phase:?}\n{}", lan.dump());
    assert!(done.is_some(), "{context}");
    let (taken, who) = lan.first_transition_to(State::Master, joined).unwrap();
    assert_eq!(who, high);
    assert!(taken >= allowed, "{context}");
    assert!(
        taken <= allowed + lan.master_down_interval(high),
        "{context}"
    );
}

#[test]
fn preempt_delay_holds_a_joining_higher_priority_back() {
    for phase in [0, 1, 500, 999].map(Duration::from_millis) {
        join_with_preempt_delay(Duration::from_secs(30), phase);
        join_with_preempt_delay(Duration::from_secs(2), phase);
        join_with_preempt_delay(Duration::ZERO, phase);
    }
}

#[test]
fn preempt_delay_does_not_delay_an_election_without_master() {
    let mut lan = Lan::with_routers([RouterConfig {
        preempt_delay: Duration::from_secs(30),
        ..config(20, 200)
    }]);
    lan.start(0);
    lan.run_for(lan.master_down_interval(0));
    assert_eq!(lan.holders(), [0]);
}

// ------------------------------------------------------------------ loss, owner

#[test]
fn two_lost_adverts_change_nothing_three_make_a_short_blip() {
    let mut lan = Lan::with_routers(configs(&[200, 100]));
    elect(&mut lan);
    let from = lan.now();
    lan.lose_next_adverts(0, 2);
    lan.run_for_with(Duration::from_secs(20), |lan| {
        assert_eq!(lan.holders(), [0], "{}", lan.dump());
    });
    assert_eq!(lan.transitions_to(State::Master, from), []);

    // Three lost adverts are 4 intervals of silence, more than Master_Down_Interval:
    // the backup takes over, and yields as soon as the master answers its claim.
    let from = lan.now();
    lan.lose_next_adverts(0, 3);
    lan.run_for(Duration::from_secs(20));
    assert_eq!(lan.transitions_to(State::Master, from).len(), 1);
    assert!(lan.time_with_several_holders(from, lan.now()) <= lan.link_delay() * 2);
    assert_eq!(lan.holders(), [0]);
}

#[test]
fn the_address_owner_takes_over_at_once() {
    let mut lan = Lan::with_routers(configs(&[100, 255]));
    let t0 = lan.now();
    lan.start_all();
    assert_eq!(lan.holders(), [1], "priority 255 is master at start-up");
    lan.run_for(Duration::from_secs(30));
    assert_eq!(lan.holders(), [1]);
    assert_eq!(lan.transitions_to(State::Master, t0), [(t0, 1)]);
    lan.kill(1);
    lan.run_for(Duration::from_secs(10));
    assert_eq!(lan.holders(), [0]);
    let back = lan.now();
    lan.start(1);
    lan.run_for(lan.link_delay());
    assert_eq!(lan.holders(), [1], "{}", lan.dump());
    assert!(lan.time_with_several_holders(back, lan.now()) <= lan.link_delay());
}

#[test]
fn adverts_of_another_interval_are_dropped() {
    // Section 7.1: a mismatching interval is a configuration error; each router then
    // ignores the other and both become master (as keepalived does).
    let mut lan = Lan::with_routers([
        config(10, 200),
        RouterConfig {
            advert_int: Duration::from_secs(2),
            ..config(20, 100)
        },
    ]);
    lan.start_all();
    lan.run_for(Duration::from_secs(20));
    assert_eq!(lan.holders(), [0, 1]);
    assert!(
        lan.timeline()
            .iter()
            .any(|r| r.what == Happening::Dropped(vrrp::DropReason::Interval))
    );
}

// ------------------------------------------------------------------ random runs

#[derive(Clone, Debug)]
enum Op {
    Unplug,
    Move(Segment),
    HealAll,
    Kill,
    Start,
    Shutdown,
    Fault,
    Clear,
    Lose(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Unplug),
        (0u32..3).prop_map(Op::Move),
        Just(Op::HealAll),
        Just(Op::Kill),
        Just(Op::Start),
        Just(Op::Start),
        Just(Op::Shutdown),
        Just(Op::Fault),
        Just(Op::Clear),
        Just(Op::Clear),
        (1u32..=2).prop_map(Op::Lose),
    ]
}

#[derive(Clone, Debug)]
struct Scenario {
    advert_int: u64,
    /// (priority, preempt, preempt_delay in ms) per router.
    routers: Vec<(u8, bool, u64)>,
    /// Start-up offset per router, in ms.
    starts: Vec<u64>,
    /// (gap after the previous event in ms, router, what).
    events: Vec<(u64, usize, Op)>,
    heal_at_end: bool,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (2usize..=6, 1u64..=3).prop_flat_map(|(n, advert_int)| {
        let router = (
            1u8..=254,
            any::<bool>(),
            prop_oneof![3 => Just(0u64), 1 => 0u64..5000],
        );
        (
            proptest::collection::vec(router, n),
            proptest::collection::vec(0u64..3000, n),
            proptest::collection::vec((0u64..8000, 0..n, op()), 0..16),
            any::<bool>(),
        )
            .prop_map(move |(routers, starts, events, heal_at_end)| Scenario {
                advert_int,
                routers,
                starts,
                events,
                heal_at_end,
            })
    })
}

/// Invariant 2, checked after every step: a running router whose service is down is
/// in Fault and holds nothing; a running healthy one is in Backup or Master.
fn check_fault(lan: &Lan) {
    for id in lan.ids() {
        if !lan.is_running(id) {
            continue;
        }
        if lan.is_healthy(id) {
            assert!(
                matches!(lan.state(id), State::Backup | State::Master),
                "#{id} is {}\n{}",
                lan.state(id),
                lan.dump()
            );
        } else {
            assert_eq!(lan.state(id), State::Fault, "#{id}\n{}", lan.dump());
            assert!(
                !lan.holds(id),
                "#{id} holds the VIP in Fault\n{}",
                lan.dump()
            );
        }
    }
}

/// The broadcast domains of the running routers: one per segment, and one per
/// unplugged router.
fn domains(lan: &Lan) -> Vec<Vec<NodeId>> {
    let running: Vec<NodeId> = lan.ids().filter(|&id| lan.is_running(id)).collect();
    let mut out: Vec<Vec<NodeId>> = Vec::new();
    let mut segments: Vec<Segment> = running.iter().filter_map(|&id| lan.segment(id)).collect();
    segments.sort_unstable();
    segments.dedup();
    for s in segments {
        out.push(
            running
                .iter()
                .copied()
                .filter(|&id| lan.segment(id) == Some(s))
                .collect(),
        );
    }
    for &id in &running {
        if lan.segment(id).is_none() {
            out.push(vec![id]);
        }
    }
    out
}

/// The settled state: in each broadcast domain with a healthy running router, exactly
/// one holder, a healthy one, in Master, which no preempting router outranks; none
/// elsewhere; and no address left by a dead or stopped router.
fn check_settled(lan: &Lan) -> Vec<NodeId> {
    for id in lan.holders() {
        assert_eq!(
            lan.process(id),
            Process::Running,
            "#{id} left its VIP\n{}",
            lan.dump()
        );
    }
    let mut holders = Vec::new();
    for domain in domains(lan) {
        let eligible: Vec<NodeId> = domain
            .iter()
            .copied()
            .filter(|&id| lan.is_healthy(id))
            .collect();
        let here: Vec<NodeId> = domain.iter().copied().filter(|&id| lan.holds(id)).collect();
        let masters: Vec<NodeId> = domain
            .iter()
            .copied()
            .filter(|&id| lan.state(id) == State::Master)
            .collect();
        if eligible.is_empty() {
            assert_eq!(here, [], "domain {domain:?}\n{}", lan.dump());
            continue;
        }
        assert_eq!(here.len(), 1, "domain {domain:?}\n{}", lan.dump());
        assert_eq!(masters, here, "domain {domain:?}\n{}", lan.dump());
        let holder = here[0];
        let priority = lan.config(holder).priority;
        for &id in &eligible {
            assert!(
                !(lan.config(id).preempt && lan.config(id).priority > priority),
                "#{id} should have preempted #{holder} in {domain:?}\n{}",
                lan.dump()
            );
        }
        holders.push(holder);
    }
    holders.sort_unstable();
    holders
}

fn run_scenario(s: &Scenario) {
    let mut lan = Lan::new();
    for (i, &(priority, preempt, delay_ms)) in s.routers.iter().enumerate() {
        lan.add_router(RouterConfig {
            advert_int: Duration::from_secs(s.advert_int),
            preempt,
            preempt_delay: Duration::from_millis(delay_ms),
            ..config(10 + u8::try_from(i).unwrap(), priority)
        });
    }
    let starts: Vec<Duration> = s
        .starts
        .iter()
        .map(|&ms| Duration::from_millis(ms))
        .collect();
    let mut order: Vec<NodeId> = lan.ids().collect();
    order.sort_by_key(|&id| starts[id]);
    for id in order {
        lan.run_until_with(lan.at(starts[id]), check_fault);
        lan.start(id);
        check_fault(&lan);
    }
    for (gap, id, op) in &s.events {
        lan.run_for_with(Duration::from_millis(*gap), check_fault);
        let id = *id;
        match op {
            Op::Unplug => lan.disconnect(id),
            Op::Move(segment) => lan.connect(id, *segment),
            Op::HealAll => lan.heal(),
            Op::Kill => lan.kill(id),
            Op::Start => lan.start(id),
            Op::Shutdown => lan.shutdown(id),
            Op::Fault => lan.enter_fault(id, "redis down"),
            Op::Clear => lan.leave_fault(id, "redis up"),
            Op::Lose(n) => lan.lose_next_adverts(id, *n),
        }
        check_fault(&lan);
    }
    if s.heal_at_end {
        lan.heal();
    }
    let int = Duration::from_secs(s.advert_int);
    let max_delay = lan
        .ids()
        .map(|id| lan.config(id).preempt_delay)
        .max()
        .unwrap_or_default();
    // Losses still pending delay the end by one interval each.
    let losses: u32 = s
        .events
        .iter()
        .map(|(_, _, op)| if let Op::Lose(n) = op { *n } else { 0 })
        .sum();
    let settle = lan.max_master_down_interval() + int + max_delay + int * losses + EPSILON;
    lan.run_for_with(settle, check_fault);
    let holders = check_settled(&lan);
    // And it stays so.
    lan.run_for_with(int * 10, |lan| {
        check_fault(lan);
        assert_eq!(lan.holders(), holders, "{}", lan.dump());
    });
    check_settled(&lan);
    if s.heal_at_end && lan.ids().any(|id| lan.is_running(id) && lan.is_healthy(id)) {
        assert_eq!(holders.len(), 1, "{}", lan.dump());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random routers and random partitions, kills, restarts, faults, shutdowns and
    /// losses at random times: once things have settled, one holder per broadcast
    /// domain that has a healthy router and none elsewhere, and never a faulted holder.
    #[test]
    fn random_events_settle_to_one_holder(s in scenario()) {
        run_scenario(&s);
    }
}

// ------------------------------------------------------------------ doubtful

/// `inject_advert` builds the adverts the routers build: they pass every check.
#[test]
fn injected_adverts_pass_the_receive_checks() {
    let mut lan = Lan::with_routers(configs(&[100]));
    lan.start(0);
    let t0 = lan.now();
    for _ in 0..10 {
        lan.run_for(Duration::from_millis(500));
        lan.inject_advert(0, host_address(200), 150, 1);
    }
    lan.run_for(Duration::from_millis(10));
    assert_eq!(lan.adverts_received(0), 10);
    assert_eq!(lan.transitions_to(State::Master, t0), []);
}

/// Regression: a master answers every lower-priority (or priority-0) advert with an
/// advert of its own, which re-arms its Adver_Timer; the answer must renew the VIP's
/// lease too, or lower adverts arriving at least once per advert_int (here a peer that
/// cannot hear us, with a clock 0.1 % fast) would starve the renewal and the lease
/// would run out on a live master that the backups never replace.
#[test]
fn a_master_keeps_its_vip_while_answering_lower_adverts() {
    let mut lan = Lan::with_routers(configs(&[200, 100]));
    elect(&mut lan);
    let from = lan.now();
    for _ in 0..30 {
        lan.run_for_with(Duration::from_millis(999), |lan| {
            assert_eq!(lan.state(0), State::Master);
            assert_eq!(lan.holders(), [0], "{}", lan.dump());
        });
        lan.inject_advert(0, host_address(200), 50, 1);
    }
    assert_eq!(lan.transitions_to(State::Master, from), []);
    assert_eq!(lan.holders(), [0]);
}

/// Regression: a master that yields to a preempting peer must not say priority 0,
/// which every other backup would take as "the master is leaving" and answer by arming
/// Skew_Time; one lost packet would then elect a third router. In plain RFC 3768 one
/// lost packet never makes a backup take over: it takes three.
#[test]
fn one_lost_packet_after_a_preemption_does_not_elect_a_third_router() {
    let mut lan = Lan::with_routers(configs(&[100, 200, 50]));
    lan.start(0);
    lan.start(2);
    lan.run_for(Duration::from_secs(10));
    assert_eq!(lan.holders(), [0]);
    lan.start(1);
    let preempted = lan
        .run_until_true(lan.now() + Duration::from_secs(10), |lan| {
            lan.state(1) == State::Master
        })
        .expect("the higher priority preempts");
    // The takeover advert is on the wire; lose the next one, the answer to the
    // priority 0 of the yielding router.
    lan.lose_next_adverts(1, 1);
    lan.run_for(Duration::from_secs(10));
    assert_eq!(
        lan.transitions_to(State::Master, preempted),
        [(preempted, 1)],
        "{}",
        lan.dump()
    );
    assert!(
        lan.time_with_several_holders(preempted + lan.link_delay(), lan.now()) == Duration::ZERO,
        "{}",
        lan.dump()
    );
}

/// Issue 10: a master answers a lower (or priority-0) advert with an advert of its own,
/// a lease renewal and a burst of gratuitous ARP. Unlimited, a flood of adverts (1000
/// in one second, here) would become a broadcast storm; the answers are limited to one
/// per advert interval, and the master keeps its VIP and its state throughout.
#[test]
fn a_flood_of_adverts_yields_a_bounded_number_of_answers() {
    for priority in [50, 0] {
        let mut lan = Lan::with_routers(configs(&[200, 100]));
        elect(&mut lan);
        lan.run_for(Duration::from_millis(500));
        let from = lan.now();
        let sent_before = lan.adverts_sent(0);
        for _ in 0..1000 {
            lan.inject_advert(0, host_address(200), priority, 1);
            lan.run_for_with(Duration::from_millis(1), |lan| {
                assert_eq!(lan.holders(), [0], "{}", lan.dump());
            });
        }
        let answers = lan.adverts_sent(0) - sent_before;
        let bursts = lan
            .timeline()
            .iter()
            .filter(|r| {
                r.at >= from && r.node == 0 && r.what == Happening::GratuitousArp { conflict: true }
            })
            .count();
        // In one second: at most one answer (one advert, one GARP burst) plus the
        // periodic advert, and one more of each where the second's edges fall.
        assert!(
            answers <= 3,
            "priority {priority}: {answers} adverts in reply to 1000"
        );
        assert!(
            (1..=2).contains(&bursts),
            "priority {priority}: {bursts} gratuitous ARP bursts in reply to 1000"
        );
        assert_eq!(lan.state(0), State::Master);
        assert_eq!(lan.transitions_to(State::Master, from), []);
        assert!(lan.adverts_received(0) >= 1000, "the flood was accepted");
    }
}

/// Issue 10: a master whose VIP cannot be added (EPERM, the interface refusing it)
/// must not stay master advertising its priority, or the backup never takes over and
/// clients reach nothing. It goes to Fault (priority 0: the backup takes over after
/// Skew_Time), probes every advert interval, and leaves Fault for Backup once the
/// address can be added again.
#[test]
fn a_master_that_cannot_add_its_vip_goes_to_fault_and_retries() {
    let mut lan = Lan::with_routers(with_preempt(configs(&[200, 100]), false));
    elect(&mut lan);
    lan.run_for(Duration::from_millis(300));
    let failed = lan.now();
    lan.fail_address_adds(0, Some("Operation not permitted (os error 1)"));
    // The next renewal fails (within one advert interval).
    let fault = lan
        .run_until_true(failed + advert_int(&lan) + EPSILON, |lan| {
            lan.state(0) == State::Fault
        })
        .unwrap_or_else(|| panic!("the master stays master\n{}", lan.dump()));
    assert!(lan.timeline().iter().any(|r| r.at >= failed
        && r.node == 0
        && matches!(&r.what, Happening::Transition(t)
            if t.to == State::Fault && t.reason.kind() == "addresses_failed")));
    assert_eq!(lan.router(0).effective_priority(), 0);
    // Priority 0 went out: the backup takes over after its Skew_Time.
    let taken = lan
        .run_until_true(fault + lan.skew_time(1) + EPSILON, |lan| {
            lan.holders() == [1]
        })
        .unwrap_or_else(|| panic!("the backup did not take over\n{}", lan.dump()));
    assert!(taken - fault <= lan.skew_time(1) + EPSILON);
    // While adds keep failing: Fault, a probe every interval, one holder.
    let probes_from = lan.now();
    lan.run_for_with(Duration::from_secs(10), |lan| {
        assert_eq!(lan.holders(), [1], "{}", lan.dump());
        assert_eq!(lan.state(0), State::Fault);
    });
    let probes = lan
        .timeline()
        .iter()
        .filter(|r| r.at >= probes_from && r.what == Happening::AddressProbe { ok: false })
        .count();
    assert!((9..=11).contains(&probes), "{probes} probes in 10 s");
    // The cause goes away: the next probe succeeds and the router is a backup again.
    let cleared = lan.now();
    lan.fail_address_adds(0, None);
    let back = lan
        .run_until_true(cleared + advert_int(&lan) + EPSILON, |lan| {
            lan.state(0) == State::Backup
        })
        .unwrap_or_else(|| panic!("still in Fault\n{}", lan.dump()));
    assert!(back - cleared <= advert_int(&lan));
    lan.run_for_with(Duration::from_secs(30), |lan| {
        assert_eq!(lan.holders(), [1], "{}", lan.dump());
    });
    assert_eq!(lan.state(0), State::Backup);
}

/// Issue 10: link down takes a master to Fault (the backup takes over once the
/// adverts stop), link up brings it back as a backup; invariant 1 throughout.
#[test]
fn link_down_takes_the_master_to_fault_and_link_up_back_to_backup() {
    let mut lan = Lan::with_routers(with_preempt(configs(&[200, 100]), false));
    elect(&mut lan);
    let down = lan.now();
    lan.link_down(0);
    assert_eq!(lan.state(0), State::Fault);
    assert!(!lan.holds(0), "the VIP goes with the link");
    lan.run_until_true(down + lan.master_down_interval(1) + EPSILON, |lan| {
        lan.holders() == [1]
    })
    .unwrap_or_else(|| panic!("the backup did not take over\n{}", lan.dump()));
    lan.run_for(Duration::from_secs(20));
    assert_eq!(lan.state(0), State::Fault);
    lan.link_up(0);
    assert_eq!(lan.state(0), State::Backup);
    lan.run_for_with(Duration::from_secs(30), |lan| {
        assert_eq!(lan.holders(), [1], "{}", lan.dump());
    });
    assert_eq!(lan.state(0), State::Backup);
    // A link fault and a service fault together: Fault until both clear.
    lan.link_down(1);
    lan.enter_fault(1, "redis down");
    lan.run_for(lan.master_down_interval(0) + EPSILON);
    assert_eq!(lan.holders(), [0], "{}", lan.dump());
    lan.link_up(1);
    assert_eq!(lan.state(1), State::Fault);
    lan.leave_fault(1, "redis up");
    assert_eq!(lan.state(1), State::Backup);
}

// ------------------------------------------------------------------ VRRPv3, sub-second

/// `configs` as VRRPv3 routers advertising every `interval`.
fn v3(mut configs: Vec<RouterConfig>, interval: Duration) -> Vec<RouterConfig> {
    for c in &mut configs {
        c.version = Version::V3;
        c.advert_int = interval;
    }
    configs
}

const SUB_SECOND: [Duration; 2] = [Duration::from_millis(10), Duration::from_millis(100)];

#[test]
fn v3_at_sub_second_intervals_elects_one_holder_for_a_long_time() {
    let ms = Duration::from_millis;
    one_holder_for(v3(configs(&[100, 150]), ms(10)), Duration::from_secs(600));
    one_holder_for_an_hour(v3(configs(&[100, 150]), ms(100)));
}

#[test]
fn v3_a_killed_master_is_replaced_within_its_master_down_interval() {
    for int in SUB_SECOND {
        for phase in [0, 1, 3, 7, 9].map(|p| int * p / 10) {
            kill_the_master(v3(configs(&[200, 100]), int), phase);
            kill_the_master(v3(configs(&[200, 150, 100]), int), phase);
        }
    }
}

#[test]
fn v3_a_shut_down_master_hands_over_within_skew_time() {
    for int in SUB_SECOND {
        for phase in [0, 4, 9].map(|p| int * p / 10) {
            shut_the_master_down(v3(configs(&[200, 100]), int), phase);
        }
    }
}

#[test]
fn v3_a_healed_split_keeps_one_holder() {
    for int in SUB_SECOND {
        for phase in [0, 3, 7].map(|p| int * p / 10) {
            for preempt in [true, false] {
                split_and_heal(
                    with_preempt(v3(configs(&[200, 100]), int), preempt),
                    &[&[1]],
                    phase,
                );
                let equal = vec![config(9, 100), config(20, 100)];
                split_and_heal(with_preempt(v3(equal, int), preempt), &[&[0]], phase);
            }
        }
    }
}

/// VRRPv3 backups learn the master's interval (RFC 5798 section 6.4.2): a backup
/// configured for 1 s takes over from a 100 ms master within the 100 ms master's
/// Master_Down_Interval, as its own Skew_Time scaled to that interval.
#[test]
fn v3_a_backup_takes_over_at_the_masters_interval_not_its_own() {
    let fast = Duration::from_millis(100);
    let mut lan = Lan::with_routers([
        RouterConfig {
            version: Version::V3,
            advert_int: fast,
            ..config(10, 200)
        },
        RouterConfig {
            version: Version::V3,
            advert_int: Duration::from_secs(1),
            ..config(11, 100)
        },
    ]);
    let master = elect(&mut lan);
    assert_eq!(master, 0);
    lan.run_for(Duration::from_secs(5));
    assert_eq!(lan.router(1).master_adver_int(), fast);
    let killed = lan.now();
    lan.kill(0);
    let learned = lan.config(1).master_down_interval_for(fast);
    assert!(learned < Duration::from_millis(400), "{learned:?}");
    let (taken, who) = lan
        .first_transition_to(State::Master, killed)
        .map(Some)
        .unwrap_or_else(|| {
            lan.run_for(Duration::from_secs(5));
            lan.first_transition_to(State::Master, killed)
        })
        .expect("someone takes over");
    assert_eq!(who, 1, "{}", lan.dump());
    assert!(
        taken - killed <= learned + lan.link_delay(),
        "took {:?}, bound {learned:?}\n{}",
        taken - killed,
        lan.dump()
    );
}
