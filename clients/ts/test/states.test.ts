/**
 * Every transition of the subscription state machine, against a real server:
 * connecting→live, live→reconnecting→replaying→live, connecting→replaying→live,
 * live→closed (unsubscribed), connecting→closed (forbidden / not_found),
 * presence live→reconnecting→live, and sharing one socket between consumers.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryPositionStore } from "../src/index.js";
import { Recorder, range } from "./recorder.js";
import { TestServer, uniqueKey, waitFor } from "./server.js";

let server: TestServer;
beforeAll(async () => {
  server = await new TestServer().start();
});
afterAll(async () => {
  await server.stop();
});

describe("subscription state machine", () => {
  it("connecting → live on a fresh subscription, then live → reconnecting → replaying → live after a drop", async () => {
    const { client } = await server.user("alice");
    const project = (await client.api.projects.create({ key: uniqueKey(), name: "States" })).data;

    const rec = new Recorder(client.tickets(project.id));
    expect(rec.handle.state).toBe("connecting");
    await rec.reach("live");
    expect(rec.path).toEqual(["connecting>live"]);
    // Fresh start is live from the head (0 on a new project).
    expect(rec.handle.lastSeq).toBe(0);

    await client.api.tickets.create(project.id, { title: "live one" });
    await rec.count(1);
    rec.handle.dropConnection();
    await client.api.tickets.create(project.id, { title: "while away" });
    await rec.count(2);
    await rec.reach("live");
    expect(rec.path).toEqual(["connecting>live", "live>reconnecting", "reconnecting>replaying", "replaying>live"]);
    expect(rec.seqs).toEqual([1, 2]);

    rec.handle.release();
    expect(rec.handle.state).toBe("closed");
    expect(rec.states.at(-1)).toMatchObject({ from: "live", to: "closed", reason: "unsubscribed" });
    client.close();
  });

  it("connecting → replaying → live when a stored position exists", async () => {
    const positions = new MemoryPositionStore();
    const { client, user } = await server.user("bob", { positionStore: positions });
    const project = (await client.api.projects.create({ key: uniqueKey(), name: "Stored" })).data;
    for (const title of ["a", "b", "c"]) await client.api.tickets.create(project.id, { title });
    // Wait until the gateway has all three, so the replay (not the live tail) must carry them.
    const observer = new Recorder(client.tickets(project.id));
    await waitFor("the gateway to reach seq 3", () => observer.handle.lastSeq === 3);
    observer.handle.release();
    positions.set(`${user.id}:tickets:${project.id}`, 1);

    const rec = new Recorder(client.tickets(project.id));
    await rec.count(2);
    await rec.reach("live");
    expect(rec.path).toEqual(["connecting>replaying", "replaying>live"]);
    expect(rec.seqs).toEqual([2, 3]);
    expect(rec.replayed).toEqual([2, 3]);
    expect(positions.get(`${user.id}:tickets:${project.id}`)).toBe(3);
    client.close();
  });

  it("connecting → closed(forbidden) for a project of others, closed(not_found) for an unknown one", async () => {
    const { client: owner } = await server.user("owner");
    const project = (await owner.api.projects.create({ key: uniqueKey(), name: "Private" })).data;
    const { client: stranger } = await server.user("stranger");

    const forbidden = new Recorder(stranger.tickets(project.id));
    await forbidden.reach("closed");
    expect(forbidden.states.at(-1)).toMatchObject({ from: "connecting", to: "closed", reason: "forbidden" });
    expect(forbidden.handle.closeReason).toBe("forbidden");

    const missing = new Recorder(stranger.presence("00000000-0000-0000-0000-000000000000"));
    await missing.reach("closed");
    expect(missing.handle.closeReason).toBe("not_found");
    owner.close();
    stranger.close();
  });

  it("presence goes connecting → live and live → reconnecting → live (nothing to replay)", async () => {
    const { client } = await server.user("carol");
    const project = (await client.api.projects.create({ key: uniqueKey(), name: "Presence" })).data;
    const rec = new Recorder(client.presence(project.id));
    await rec.reach("live");
    await waitFor("presence_state", () => rec.messages.some((m) => m.type === "presence_state"));
    rec.handle.dropConnection();
    await waitFor("second presence_state", () => rec.messages.filter((m) => m.type === "presence_state").length === 2);
    await rec.reach("live");
    expect(rec.path).toEqual(["connecting>live", "live>reconnecting", "reconnecting>live"]);
    client.close();
  });

  it("consumers of one channel share one subscription; the last release closes it", async () => {
    const { client } = await server.user("dave");
    const project = (await client.api.projects.create({ key: uniqueKey(), name: "Shared" })).data;
    const a = new Recorder(client.tickets(project.id));
    const b = new Recorder(client.tickets(project.id));
    await a.reach("live");
    expect(b.handle.state).toBe("live");
    expect(client.connection.channels).toEqual({ [`tickets:${project.id}`]: "live" });

    for (const title of ["x", "y"]) await client.api.tickets.create(project.id, { title });
    await a.count(2);
    await b.count(2);
    expect(a.seqs).toEqual(range(1, 2));
    expect(b.seqs).toEqual(range(1, 2));

    a.handle.release();
    a.handle.release(); // idempotent: must not steal b's hold
    expect(b.handle.state).toBe("live");
    await client.api.tickets.create(project.id, { title: "z" });
    await b.count(3);
    expect(a.messages).toHaveLength(2); // released handles hear nothing more
    b.handle.release();
    expect(b.handle.state).toBe("closed");
    expect(client.connection.state).toBe("idle");
    client.close();
  });
});
