/**
 * Recovery: a server SIGKILLed and restarted mid-stream, and 500 changes
 * across 20 forced reconnects, are delivered exactly once and in order.
 * "Exactly once" is checked against the server's own record: the event ids
 * of the project's ticket events from the REST events feed, in position order.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import type { TicketflowClient, WebSocketLike } from "../src/index.js";
import { Recorder, range } from "./recorder.js";
import { TestServer, uniqueKey, waitFor, whileReachable } from "./server.js";

let server: TestServer;
beforeAll(async () => {
  server = await new TestServer().start();
});
afterAll(async () => {
  await server.stop();
});

/** Event ids of the project's ticket events, in position order (member events take no seq). */
async function ticketEventIds(client: TicketflowClient, projectId: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const e of client.api.events.stream(projectId)) if (e.ticket_id !== null) ids.push(e.event_id);
  return ids;
}

function eventIds(rec: Recorder<"tickets">): string[] {
  return rec.messages.map((m) => m.event_id);
}

describe("recovery", () => {
  it("resumes after the server is killed and restarted mid-stream: no gap, no duplicate", async () => {
    const { client: writer } = await server.user("writer");
    const project = (await writer.api.projects.create({ key: uniqueKey(), name: "Restart" })).data;
    const { client: reader } = await server.user("reader");
    await writer.api.members.add(project.id, (await reader.api.auth.me()).username);

    const rec = new Recorder(reader.tickets(project.id));
    await rec.reach("live");

    // The writer keeps writing through the outage. A create whose response was
    // lost in the crash may be retried and stored twice; that is fine: the
    // expectation below is what the server stored, not what the writer meant.
    // (No Idempotency-Key here: a key claimed by the killed process stays
    // "in progress" for 60 s after the restart — see the report.)
    let written = 0;
    const total = 60;
    const writing = (async () => {
      for (let i = 0; i < total; i++) {
        await whileReachable(() => writer.api.tickets.create(project.id, { title: `t${i}` }));
        written += 1;
      }
    })();

    await waitFor("some messages before the kill", () => rec.messages.length >= 15);
    await server.kill();
    await waitFor("the reader to notice", () => rec.handle.state === "reconnecting");
    await server.start();
    await writing;
    expect(written).toBe(total);
    const stored = await ticketEventIds(writer, project.id);
    expect(stored.length).toBeGreaterThanOrEqual(total);
    await rec.count(stored.length, 20_000);
    await rec.reach("live");

    expect(rec.seqs).toEqual(range(1, stored.length));
    expect(eventIds(rec)).toEqual(stored);
    expect(rec.path).toContain("live>reconnecting");
    expect(rec.path.at(-1)).toBe("replaying>live");
    writer.close();
    reader.close();
  });

  it("delivers 500 changes across 20 forced reconnects exactly once, in order", async () => {
    // A transport that can cut the TCP connection without a close frame (code 1006).
    const sockets: WebSocket[] = [];
    class CuttableWebSocket extends WebSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
      }
    }
    const { client: writer } = await server.user("writer");
    const project = (await writer.api.projects.create({ key: uniqueKey(), name: "Churn" })).data;
    const { client: reader, user } = await server.user("reader", { WebSocket: CuttableWebSocket as unknown as new (url: string) => WebSocketLike });
    await writer.api.members.add(project.id, user.username);

    const rec = new Recorder(reader.tickets(project.id));
    await rec.reach("live");

    const total = 500;
    const ticket = (await writer.api.tickets.create(project.id, { title: "churn 0" })).data;
    const writing = (async () => {
      for (let i = 1; i < total; i++) {
        await writer.api.tickets.update(ticket.id, i % 2 ? { title: `churn ${i}` } : { priority: i % 4 ? "high" : "low" });
      }
    })();

    let cuts = 0;
    while (cuts < 20) {
      await waitFor(`message ${(cuts + 1) * 20}`, () => rec.messages.length >= (cuts + 1) * 20, 30_000);
      await waitFor("a live socket to cut", () => rec.handle.state === "live");
      const live = sockets.at(-1);
      if (!live) throw new Error("no socket");
      // Alternate an abrupt TCP cut (1006) with the client-side drop hook.
      if (cuts % 2 === 0) live.terminate();
      else rec.handle.dropConnection();
      cuts += 1;
      // Counted from the transitions, not polled: a resume can finish between two polls.
      await waitFor("the reader to notice the cut", () => rec.path.filter((p) => p === "live>reconnecting").length === cuts);
    }
    await writing;
    await rec.count(total, 30_000);
    await rec.reach("live");

    expect(rec.path.filter((p) => p === "live>reconnecting")).toHaveLength(20);
    expect(sockets.length).toBeGreaterThanOrEqual(21);
    expect(rec.seqs).toEqual(range(1, total));
    expect(eventIds(rec)).toEqual(await ticketEventIds(writer, project.id));
    writer.close();
    reader.close();
  });
});
