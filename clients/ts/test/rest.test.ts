/**
 * The REST client against the real server: every endpoint group, contract
 * errors as `TicketflowError` (status, code, field, currentVersion),
 * X-Position → X-Min-Position read-your-writes, If-Match, Idempotency-Key,
 * `as_of`, history, the events feed (JSON and NDJSON) and notifications.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TicketflowError } from "../src/index.js";
import { TestServer, uniqueKey } from "./server.js";

let server: TestServer;
beforeAll(async () => {
  server = await new TestServer().start();
});
afterAll(async () => {
  await server.stop();
});

async function caught(p: Promise<unknown>): Promise<TicketflowError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TicketflowError) return err;
    throw err;
  }
  throw new Error("expected a TicketflowError");
}

describe("REST client", () => {
  it("auth, projects, members and their errors", async () => {
    const { client: alice, user } = await server.user("alice");
    expect(await alice.api.auth.me()).toEqual(user);
    const taken = await caught(alice.api.auth.register({ username: user.username, password: "long enough pw" }));
    expect(taken).toMatchObject({ status: 409, code: "username_taken" });
    const invalid = await caught(alice.api.auth.register({ username: "X", password: "long enough pw" }));
    expect(invalid).toMatchObject({ status: 422, field: "username" });
    const wrong = await caught(alice.api.auth.login({ username: user.username, password: "nope nope nope" }));
    expect(wrong).toMatchObject({ status: 401, code: "unauthenticated" });

    const key = uniqueKey();
    const created = await alice.api.projects.create({ key, name: "Rest" });
    expect(created.data.key).toBe(key);
    expect(created.position).toBeGreaterThan(0);
    expect((await alice.api.projects.create({ key, name: "again" }).catch((e: unknown) => e)) as TicketflowError).toMatchObject({
      status: 409,
      code: "project_key_taken",
    });
    const pid = created.data.id;
    expect((await alice.api.projects.list({}, { minPosition: created.position ?? 0 })).items.map((p) => p.id)).toContain(pid);
    expect((await alice.api.projects.get(pid)).statuses).toHaveLength(3);

    const { client: bob, user: bobUser } = await server.user("bob");
    expect(await caught(bob.api.projects.get(pid))).toMatchObject({ status: 403, code: "forbidden" });
    const added = await alice.api.members.add(pid, bobUser.username);
    expect(added.data).toMatchObject({ user_id: bobUser.id, role: "member" });
    expect(await caught(alice.api.members.add(pid, bobUser.username))).toMatchObject({ status: 409, code: "already_member" });
    expect(await caught(alice.api.members.add(pid, "nobody_here"))).toMatchObject({ status: 422, field: "username" });
    expect(await caught(bob.api.members.add(pid, "whoever"))).toMatchObject({ status: 403 });
    const posted = await alice.api.announcements.post(pid, { title: "System Alert", message: "Your report is ready!" });
    expect(posted.data).toMatchObject({ project_id: pid, title: "System Alert", author: { username: user.username } });
    expect(posted.position).toBeGreaterThan(added.position ?? 0);
    expect(await caught(bob.api.announcements.post(pid, { title: "x", message: "y" }))).toMatchObject({ status: 403, code: "forbidden" });
    expect(await caught(alice.api.announcements.post(pid, { title: "", message: "y" }))).toMatchObject({ status: 422, field: "title" });
    const members = await alice.api.members.list(pid, {}, { minPosition: added.position ?? 0 });
    expect(members.items.map((m) => m.username).sort()).toEqual([user.username, bobUser.username].sort());
    const removed = await alice.api.members.remove(pid, bobUser.id);
    expect(removed.position).toBeGreaterThan(added.position ?? 0);
    alice.close();
    bob.close();
  });

  it("tickets: read-your-writes, If-Match, Idempotency-Key, filters, as_of, history, comments, delete", async () => {
    const { client, user } = await server.user("tix");
    const pid = (await client.api.projects.create({ key: uniqueKey(), name: "Tickets" })).data.id;
    const created = await client.api.tickets.create(pid, { title: "First", priority: "high", assignee_id: user.id, labels: ["a"] });
    expect(created.data).toMatchObject({ title: "First", version: 1, priority: "high", assignee: { id: user.id } });
    // Read-your-writes: the list waits for the projection to reach the command's position.
    const page = await client.api.tickets.list(pid, { assignee_id: user.id }, { minPosition: created.position ?? 0 });
    expect(page.items.map((t) => t.id)).toEqual([created.data.id]);
    expect((await client.api.tickets.list(pid, { status_id: 3 }, { minPosition: created.position ?? 0 })).items).toEqual([]);

    const tid = created.data.id;
    const patched = await client.api.tickets.update(tid, { title: "Renamed", status_id: 2 }, { ifMatch: 1 });
    expect(patched.data.version).toBe(3); // two fields, two events
    const stale = await caught(client.api.tickets.update(tid, { title: "Lost" }, { ifMatch: 1 }));
    expect(stale).toMatchObject({ status: 409, code: "version_conflict", currentVersion: 3 });

    const once = await client.api.comments.add(tid, "hello", { idempotencyKey: "comment-1" });
    const twice = await client.api.comments.add(tid, "hello", { idempotencyKey: "comment-1" });
    expect(twice.data.id).toBe(once.data.id);
    expect(twice.position).toBe(once.position);
    expect(await caught(client.api.comments.add(tid, "other", { idempotencyKey: "comment-1" }))).toMatchObject({
      status: 422,
      code: "idempotency_key_reused",
    });
    const comments = await client.api.comments.list(tid, {}, { minPosition: once.position ?? 0 });
    expect(comments.items.map((c) => c.body)).toEqual(["hello"]);

    expect((await client.api.tickets.get(tid, { asOf: 1 })).title).toBe("First");
    expect((await client.api.tickets.get(tid, { minPosition: once.position ?? 0 })).version).toBe(4);
    expect(await caught(client.api.tickets.get(tid, { asOf: 99 }))).toMatchObject({ status: 422 });
    expect(await caught(client.api.tickets.get(tid, { asOf: new Date(0) }))).toMatchObject({ status: 404 });

    const deleted = await client.api.tickets.delete(tid);
    expect(deleted.position).toBeGreaterThan(once.position ?? 0);
    expect(await caught(client.api.tickets.get(tid, { minPosition: deleted.position ?? 0 }))).toMatchObject({ status: 404 });
    const history = await client.api.tickets.history(tid, { limit: 2 });
    expect(history.items.map((h) => h.version)).toEqual([1, 2]);
    expect(history.next_cursor).not.toBeNull();
    const all: string[] = [];
    for await (const h of client.api.paginate((after) => client.api.tickets.history(tid, after === undefined ? { limit: 2 } : { limit: 2, after }))) {
      all.push(h.type);
    }
    expect(all.at(0)).toBe("TicketCreated");
    expect(all.at(-1)).toBe("TicketDeleted");
    expect(all).toHaveLength(5); // created, title, status, comment, deleted

    const feed = await client.api.events.list(pid, { limit: 200 });
    const streamed: number[] = [];
    for await (const e of client.api.events.stream(pid)) streamed.push(e.position);
    expect(streamed).toEqual(feed.items.map((e) => e.position));
    expect(await caught(client.api.tickets.list(pid, { limit: 500 }))).toMatchObject({ status: 422 });
    client.close();
  });

  it("notifications: list, unread count, read, read-all", async () => {
    const { client: alice } = await server.user("alice");
    const { client: bob, user: bobUser } = await server.user("bob");
    const pid = (await alice.api.projects.create({ key: uniqueKey(), name: "Notify" })).data.id;
    await alice.api.members.add(pid, bobUser.username);
    const t1 = await alice.api.tickets.create(pid, { title: "for bob", assignee_id: bobUser.id });
    const c = await alice.api.comments.add(t1.data.id, `@${bobUser.username} please look`);
    const page = await bob.api.notifications.list({}, { minPosition: c.position ?? 0 });
    expect(page.unread_count).toBe(2);
    expect(page.items.map((n) => n.notification_type)).toEqual(["mentioned", "ticket_assigned"]);
    const first = page.items[0];
    if (!first) throw new Error("no notification");
    await bob.api.notifications.markRead(first.id);
    expect((await bob.api.notifications.list({ unread_only: true })).items).toHaveLength(1);
    await bob.api.notifications.markAllRead();
    expect((await bob.api.notifications.list()).unread_count).toBe(0);
    expect(await caught(alice.api.notifications.markRead(first.id))).toMatchObject({ status: 404 });
    alice.close();
    bob.close();
  });
});
