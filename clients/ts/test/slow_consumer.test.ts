/**
 * A real slow-consumer close: with `--ws-queue-limit 1` a burst overflows the
 * socket's queue, the server closes it with 4008, and the client resumes at
 * once with `since` — every message still delivered exactly once, in order.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Recorder, range } from "./recorder.js";
import { TestServer, uniqueKey, waitFor } from "./server.js";

let server: TestServer;
beforeAll(async () => {
  server = await new TestServer({ wsQueueLimit: 1 }).start();
});
afterAll(async () => {
  await server.stop();
});

describe("slow consumer", () => {
  it("4008 → immediate resume, nothing lost or repeated", async () => {
    const { client: writer } = await server.user("writer");
    const project = (await writer.api.projects.create({ key: uniqueKey(), name: "Slow" })).data;
    // Backoff of a minute: only the immediate 4008 resume can finish in time.
    const { client: reader, user } = await server.user("reader", { backoff: { baseMs: 60_000, maxMs: 60_000 } });
    await writer.api.members.add(project.id, user.username);
    const rec = new Recorder(reader.tickets(project.id));
    await rec.reach("live");

    let total = 0;
    while (!rec.states.some((s) => s.code === 4008) && total < 2000) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => writer.api.tickets.create(project.id, { title: `burst ${total + i}` })));
      total += 50;
    }
    expect(rec.states.some((s) => s.code === 4008)).toBe(true);
    await waitFor(`all ${total} messages`, () => rec.handle.lastSeq === total, 30_000);
    expect(rec.seqs).toEqual(range(1, total));
    writer.close();
    reader.close();
  });
});
