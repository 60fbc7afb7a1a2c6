/**
 * Resume across a page reload (the position store), and resync: when the
 * stored position is older than the server replays (`--replay-limit`), or
 * newer than the channel head (the stream was reset), the client emits
 * `resync` with the head and goes on live from there.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StorageLike, WebStoragePositionStore } from "../src/index.js";
import { Recorder, range } from "./recorder.js";
import { TestServer, uniqueKey, waitFor } from "./server.js";

/** A stand-in for `sessionStorage`: the data outlives the client objects, like a tab's storage outlives a reload. */
class FakeSessionStorage implements StorageLike {
  readonly data = new Map<string, string>();
  getItem(key: string): string | null {
    return this.data.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.data.set(key, value);
  }
  removeItem(key: string): void {
    this.data.delete(key);
  }
}

let server: TestServer;
beforeAll(async () => {
  server = await new TestServer({ replayLimit: 5 }).start();
});
afterAll(async () => {
  await server.stop();
});

describe("resume", () => {
  it("a reload resumes from the position store: exactly the missed messages, then live", async () => {
    const { client: writer } = await server.user("writer");
    const project = (await writer.api.projects.create({ key: uniqueKey(), name: "Reload" })).data;
    const { client: tab, user, tokens } = await server.user("tab", {
      positionStore: new WebStoragePositionStore(new FakeSessionStorage()),
    });
    await writer.api.members.add(project.id, user.username);
    tab.close();

    const storage = new FakeSessionStorage();
    const before = server.client({ positionStore: new WebStoragePositionStore(storage), tokens });
    const first = new Recorder(before.tickets(project.id));
    await first.reach("live");
    const ticket = (await writer.api.tickets.create(project.id, { title: "seen before reload" })).data;
    await writer.api.comments.add(ticket.id, "also seen");
    await first.count(2);
    before.close(); // the page goes away

    // While the page reloads, three changes happen (within the replay limit of 5).
    await writer.api.tickets.update(ticket.id, { priority: "urgent" });
    await writer.api.tickets.update(ticket.id, { title: "renamed" });
    await writer.api.tickets.delete(ticket.id);
    // Wait until the gateway has them all, so the replay (not the live tail) must carry them.
    const observer = new Recorder(writer.tickets(project.id));
    await waitFor("the gateway to reach seq 5", () => observer.handle.lastSeq === 5);

    const after = server.client({ positionStore: new WebStoragePositionStore(storage), tokens: before.session.tokens ?? tokens });
    const second = new Recorder(after.tickets(project.id));
    await second.count(3);
    await second.reach("live");
    expect(first.seqs).toEqual([1, 2]);
    expect(second.seqs).toEqual([3, 4, 5]);
    expect(second.replayed).toEqual([3, 4, 5]);
    expect(second.path).toEqual(["connecting>replaying", "replaying>live"]);
    expect(second.messages.map((m) => (m.type === "ticket_update" ? m.action : m.type))).toEqual(["updated", "updated", "deleted"]);
    expect(second.resyncs).toEqual([]);
    writer.close();
    after.close();
  });

  it("more missed than the server replays → resync event with the head, then live from it", async () => {
    const { client: writer } = await server.user("writer");
    const project = (await writer.api.projects.create({ key: uniqueKey(), name: "Resync" })).data;
    const storage = new FakeSessionStorage();
    const positions = new WebStoragePositionStore(storage);
    const { client: reader, user } = await server.user("reader", { positionStore: positions });
    await writer.api.members.add(project.id, user.username);

    const first = new Recorder(reader.tickets(project.id));
    await first.reach("live");
    first.handle.release();
    for (let i = 0; i < 8; i++) await writer.api.tickets.create(project.id, { title: `missed ${i}` });

    const second = new Recorder(reader.tickets(project.id));
    await second.reach("live");
    // The head may trail the last command by a message still on its way to the
    // gateway; whatever it is, the stream continues from it without a hole.
    expect(second.resyncs).toHaveLength(1);
    const head = second.resyncs[0] ?? 0;
    expect(head).toBeGreaterThan(5);
    expect(head).toBeLessThanOrEqual(8);
    expect(second.replayed).toEqual([]); // nothing half-replayed
    await writer.api.tickets.create(project.id, { title: "after resync" });
    await waitFor("seq 9", () => second.handle.lastSeq === 9);
    expect(second.seqs).toEqual(range(head + 1, 9));
    writer.close();
    reader.close();
  });

  it("a stored position beyond the head (stream reset) → resync", async () => {
    const { client, user, tokens } = await server.user("reset", { positionStore: new WebStoragePositionStore(new FakeSessionStorage()) });
    const project = (await client.api.projects.create({ key: uniqueKey(), name: "Reset" })).data;
    await client.api.tickets.create(project.id, { title: "one" });
    const storage = new FakeSessionStorage();
    storage.setItem(`ticketflow:seq:${user.id}:tickets:${project.id}`, "1000");
    const reloaded = server.client({ positionStore: new WebStoragePositionStore(storage), tokens: client.session.tokens ?? tokens });
    const rec = new Recorder(reloaded.tickets(project.id));
    await rec.reach("live");
    expect(rec.resyncs).toHaveLength(1);
    const head = rec.resyncs[0] ?? -1;
    expect(head === 0 || head === 1).toBe(true);
    await client.api.tickets.create(project.id, { title: "two" });
    await waitFor("seq 2", () => rec.handle.lastSeq === 2);
    expect(rec.seqs).toEqual(range(head + 1, 2));
    expect(storage.getItem(`ticketflow:seq:${user.id}:tickets:${project.id}`)).toBe("2");
    client.close();
    reloaded.close();
  });
});
