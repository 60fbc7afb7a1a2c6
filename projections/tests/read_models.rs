//! The tickets and comments read models: their rows after real commands, and
//! the queries the read API pages and filters with.

use serde_json::json;
use ticketflow_domain::{Priority, TicketChanges};
use ticketflow_projections::{CommentsProjection, TicketsProjection};
use ticketflow_store::EventStore;
use ticketflow_testkit::cast::{alice, bob, carol};
use ticketflow_testkit::on_each_backend;
use ticketflow_testkit::world::*;
use uuid::Uuid;

async fn ticket_rows_hold_the_aggregates_state(backend: Backend) {
    let w = World::on(backend).await;
    let a = w.create(&alice(), "First", None).await;
    let b = w.create(&bob(), "Second", Some(&carol())).await;
    w.update(
        &alice(),
        a,
        TicketChanges {
            title: Some("First, renamed".into()),
            description: Some("ask @bob".into()),
            priority: Some(Priority::Urgent),
            labels: Some(vec!["x".into(), "y".into()]),
            status_id: Some(2),
            assignee_id: Some(Some(bob().id)),
        },
    )
    .await;
    w.comment(&carol(), a, "a comment bumps the version").await;
    w.assign(&alice(), b, None).await;
    w.sync(&TicketsProjection).await;

    for id in [a, b] {
        let loaded = w.store.load_ticket(id).await.expect("load").state;
        let read = w.reads.ticket(id).await.expect("query");
        assert_eq!(read, Some(loaded), "ticket {id}");
    }
    let row = &w.rows_where("rm_tickets", "ticket_id", json!(a)).await[0];
    let last = w.store.load_ticket(a).await.expect("load").last_position;
    assert_eq!(
        [
            &row["number"],
            &row["status_id"],
            &row["assignee_id"],
            &row["deleted"],
            &row["last_position"]
        ],
        [
            &json!(1),
            &json!(2),
            &json!(bob().id),
            &json!(false),
            &json!(last)
        ]
    );
}

async fn a_deleted_ticket_keeps_its_row_but_leaves_the_reads(backend: Backend) {
    let w = World::on(backend).await;
    let a = w.create(&alice(), "Doomed", Some(&bob())).await;
    let b = w.create(&alice(), "Kept", None).await;
    w.delete(&bob(), a).await;
    w.sync(&TicketsProjection).await;

    assert_eq!(w.reads.ticket(a).await.expect("query"), None);
    let listed = w
        .reads
        .tickets(w.project_id, None, None, 0, 50)
        .await
        .expect("list");
    assert_eq!(listed.iter().map(|t| t.id).collect::<Vec<_>>(), vec![b]);
    let row = &w.rows_where("rm_tickets", "ticket_id", json!(a)).await[0];
    assert_eq!(row["deleted"], json!(true));
    assert_eq!(row["state"]["deleted"], json!(true));
    assert_eq!(row["state"]["version"], json!(2));
    assert_eq!(w.reads.ticket(Uuid::now_v7()).await.expect("q"), None);
}

async fn tickets_page_by_number_and_filter_by_status_and_assignee(backend: Backend) {
    let w = World::on(backend).await;
    let mut ids = Vec::new();
    for n in 1..=7 {
        let assignee = match n % 3 {
            0 => Some(bob()),
            1 => Some(carol()),
            _ => None,
        };
        ids.push(
            w.create(&alice(), &format!("T{n}"), assignee.as_ref())
                .await,
        );
    }
    // T2, T4 and T6 in progress; T6 then deleted.
    for i in [1, 3, 5] {
        w.status(&alice(), ids[i], 2).await;
    }
    w.delete(&alice(), ids[5]).await;
    w.sync(&TicketsProjection).await;
    let numbers = |tickets: Vec<ticketflow_domain::Ticket>| -> Vec<u64> {
        tickets.iter().map(|t| t.number).collect()
    };

    let page = |after, limit| w.reads.tickets(w.project_id, None, None, after, limit);
    assert_eq!(numbers(page(0, 3).await.expect("p1")), vec![1, 2, 3]);
    assert_eq!(numbers(page(3, 3).await.expect("p2")), vec![4, 5, 7]);
    assert_eq!(numbers(page(7, 3).await.expect("p3")), Vec::<u64>::new());

    let in_progress = w
        .reads
        .tickets(w.project_id, Some(2), None, 0, 50)
        .await
        .expect("status");
    assert_eq!(numbers(in_progress), vec![2, 4]);
    let open_after_1 = w
        .reads
        .tickets(w.project_id, Some(1), None, 1, 50)
        .await
        .expect("status");
    assert_eq!(numbers(open_after_1), vec![3, 5, 7]);
    let bobs = w
        .reads
        .tickets(w.project_id, None, Some(bob().id), 0, 50)
        .await
        .expect("assignee");
    assert_eq!(numbers(bobs), vec![3]);
    let carols_open = w
        .reads
        .tickets(w.project_id, Some(1), Some(carol().id), 0, 50)
        .await
        .expect("both");
    assert_eq!(numbers(carols_open), vec![1, 7]);
    let elsewhere = w
        .reads
        .tickets(Uuid::now_v7(), None, None, 0, 50)
        .await
        .expect("other project");
    assert!(elsewhere.is_empty());
}

async fn comments_are_listed_in_order_and_paged_by_version(backend: Backend) {
    let w = World::on(backend).await;
    let a = w.create(&alice(), "Talked about", None).await;
    let other = w.create(&alice(), "Other", None).await;
    let c1 = w.comment(&bob(), a, "first").await;
    w.status(&alice(), a, 2).await;
    let c2 = w.comment(&carol(), a, "second @alice").await;
    let c3 = w.comment(&alice(), a, "third").await;
    w.comment(&alice(), other, "elsewhere").await;
    w.sync(&CommentsProjection).await;

    let all = w.reads.comments(a, 0, 50).await.expect("all");
    assert_eq!(
        all.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![c1, c2, c3]
    );
    assert_eq!(
        all.iter().map(|c| c.version).collect::<Vec<_>>(),
        vec![2, 4, 5]
    );
    let second = &all[1];
    assert_eq!(second.ticket_id, a);
    assert_eq!(second.author, carol());
    assert_eq!(second.body, "second @alice");
    let stored = w.store.stream_events(a, 3, 1).await.expect("event");
    assert_eq!(second.created_at, stored[0].occurred_at);

    let first_page = w.reads.comments(a, 0, 2).await.expect("p1");
    assert_eq!(first_page.len(), 2);
    let rest = w
        .reads
        .comments(a, first_page[1].version, 2)
        .await
        .expect("p2");
    assert_eq!(rest.iter().map(|c| c.id).collect::<Vec<_>>(), vec![c3]);
    assert!(w.reads.comments(a, 5, 2).await.expect("p3").is_empty());
}

async fn projections_ignore_what_is_not_theirs(backend: Backend) {
    let w = World::on(backend).await;
    // Only project events so far: nothing to show, but the checkpoint moves.
    w.sync_all().await;
    for table in [
        "rm_tickets",
        "rm_comments",
        "rm_notifications",
        "rm_ticket_messages",
    ] {
        assert_eq!(w.dump(table).await, serde_json::json!([]), "{table}");
    }
    let head = w.store.head_position().await.expect("head");
    let checkpoints = w.reads.checkpoints().await.expect("checkpoints");
    assert_eq!(
        checkpoints,
        vec![
            ("comments".to_string(), head),
            ("notifications".to_string(), head),
            ("ticket_channel".to_string(), head),
            ("tickets".to_string(), head),
        ]
    );
}

on_each_backend!(
    ticket_rows_hold_the_aggregates_state,
    a_deleted_ticket_keeps_its_row_but_leaves_the_reads,
    tickets_page_by_number_and_filter_by_status_and_assignee,
    comments_are_listed_in_order_and_paged_by_version,
    projections_ignore_what_is_not_theirs,
);
