//! The hub's fan-out rules, on its public API, and its feeds on a real NATS.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ticketflow_nats::{Bus, Channel};
use ticketflow_realtime::close_codes::{REMOVED_MEMBER, SLOW_CONSUMER};
use ticketflow_realtime::hub::{Hub, Live};
use tokio::time::timeout;
use uuid::Uuid;

fn live(seq: i64) -> Live {
    Live {
        seq: Some(seq),
        json: format!(r#"{{"seq":{seq}}}"#).into(),
    }
}

#[tokio::test]
async fn a_full_queue_closes_that_socket_with_4008_and_spares_the_others() {
    let hub = Hub::new(3);
    let key = Channel::Tickets {
        project_id: Uuid::new_v4(),
    };
    let slow = hub.subscribe(key, Uuid::new_v4());
    let mut fast = hub.subscribe(key, Uuid::new_v4());
    for seq in 1..=10 {
        hub.dispatch(&key, live(seq));
        let got = fast.rx.recv().await.expect("fast socket stays subscribed");
        assert_eq!(got.seq, Some(seq));
    }
    assert_eq!(slow.control.code.load(Ordering::SeqCst), SLOW_CONSUMER);
    assert_eq!(hub.sockets(), 1, "the slow socket left the hub");
}

#[tokio::test]
async fn one_serialisation_is_shared_by_every_socket() {
    let hub = Hub::new(8);
    let key = Channel::Notifications {
        user_id: Uuid::new_v4(),
    };
    let mut a = hub.subscribe(key, Uuid::new_v4());
    let mut b = hub.subscribe(key, Uuid::new_v4());
    hub.dispatch(&key, live(1));
    let (x, y) = (a.rx.recv().await.expect("a"), b.rx.recv().await.expect("b"));
    assert_eq!(
        x.json.as_str().as_ptr(),
        y.json.as_str().as_ptr(),
        "one buffer, shared"
    );
}

#[tokio::test]
async fn removing_a_member_closes_only_their_project_sockets() {
    let hub = Hub::new(8);
    let (project, other) = (Uuid::new_v4(), Uuid::new_v4());
    let (bob, alice) = (Uuid::new_v4(), Uuid::new_v4());
    let bobs = hub.subscribe(
        Channel::Tickets {
            project_id: project,
        },
        bob,
    );
    let bobs_elsewhere = hub.subscribe(Channel::Tickets { project_id: other }, bob);
    let alices = hub.subscribe(
        Channel::Tickets {
            project_id: project,
        },
        alice,
    );
    hub.remove_member(project, bob);
    assert_eq!(bobs.control.code.load(Ordering::SeqCst), REMOVED_MEMBER);
    assert_eq!(bobs_elsewhere.control.code.load(Ordering::SeqCst), 0);
    assert_eq!(alices.control.code.load(Ordering::SeqCst), 0);
    drop(bobs);
    assert_eq!(hub.sockets(), 2);
}

#[tokio::test]
async fn a_dropped_subscription_leaves_the_hub() {
    let hub = Hub::new(8);
    let key = Channel::Tickets {
        project_id: Uuid::new_v4(),
    };
    let subscription = hub.subscribe(key, Uuid::new_v4());
    assert_eq!(hub.sockets(), 1);
    drop(subscription);
    assert_eq!(hub.sockets(), 0);
}

/// A hub fed by NATS subscribes to each followed channel from its first
/// socket's arrival (ready: what another connection publishes from then on
/// arrives) to its last socket's departure, and to nothing else.
#[tokio::test]
async fn a_fed_hub_follows_exactly_the_channels_its_sockets_follow() {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4333".into());
    let prefix = format!("tf_{}", Uuid::new_v4().simple());
    let (here, elsewhere) = (
        Bus::connect(&url, &prefix)
            .await
            .expect("NATS (scripts/services.sh starts one)"),
        Bus::connect(&url, &prefix).await.expect("NATS"),
    );
    let publisher = elsewhere.broker();
    let hub = Hub::fed_by(8, here.broker());
    let (followed, other, user) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let publish = async |channel: Channel, seq: i64| {
        let json = format!(r#"{{"seq":{seq}}}"#);
        publisher
            .publish_channel(&channel, seq, json)
            .await
            .expect("publish");
    };

    let mut tickets = hub.subscribe(
        Channel::Tickets {
            project_id: followed,
        },
        user,
    );
    let mut notifications = hub.subscribe(Channel::Notifications { user_id: user }, user);
    tickets.ready().await;
    notifications.ready().await;
    assert_eq!(hub.feeds(), 2);
    publish(Channel::Tickets { project_id: other }, 1).await;
    publish(
        Channel::Tickets {
            project_id: followed,
        },
        7,
    )
    .await;
    publisher
        .publish_read_signal(user, "{}".into())
        .await
        .expect("publish");
    publish(Channel::Notifications { user_id: user }, 3).await;
    let within = Duration::from_secs(10);
    let got = timeout(within, tickets.rx.recv()).await.expect("in time");
    assert_eq!(
        got.expect("live").seq,
        Some(7),
        "only the followed project's"
    );
    let signal = timeout(within, notifications.rx.recv())
        .await
        .expect("in time");
    assert_eq!(signal.expect("live").seq, None);
    let next = timeout(within, notifications.rx.recv())
        .await
        .expect("in time");
    assert_eq!(next.expect("live").seq, Some(3));

    drop(tickets);
    assert_eq!(
        hub.feeds(),
        1,
        "the last socket took its channel's feed along"
    );
    drop(notifications);
    assert_eq!(hub.feeds(), 0);
}
