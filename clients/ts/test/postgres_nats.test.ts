/**
 * The same guarantees on the PostgreSQL + NATS deployment: a server killed
 * mid-stream and restarted resumes with no gap and no duplicate. Runs only
 * when `TICKETFLOW_TEST_DATABASE_URL` and `NATS_URL` are set (a fresh
 * database and a unique NATS prefix are made per run); skipped otherwise.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Recorder, range } from "./recorder.js";
import { TestServer, postgresAvailable, uniqueKey, waitFor, whileReachable } from "./server.js";

const enabled = postgresAvailable();
if (!enabled) {
  console.warn("postgres_nats.test.ts skipped: set TICKETFLOW_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres) and NATS_URL (NATS ≥ 2.10) to run it");
}

describe.skipIf(!enabled)("PostgreSQL + NATS mode", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await new TestServer({ postgres: true }).start();
  });
  afterAll(async () => {
    await server.stop();
  });

  it("resumes across a SIGKILL and restart with no gap and no duplicate", async () => {
    const { client: writer } = await server.user("writer");
    const project = (await writer.api.projects.create({ key: uniqueKey(), name: "PgRestart" })).data;
    const { client: reader, user } = await server.user("reader");
    await writer.api.members.add(project.id, user.username);
    const rec = new Recorder(reader.tickets(project.id));
    await rec.reach("live");

    const writing = (async () => {
      for (let i = 0; i < 40; i++) await whileReachable(() => writer.api.tickets.create(project.id, { title: `t${i}` }));
    })();
    await waitFor("messages before the kill", () => rec.messages.length >= 10);
    await server.restart();
    await writing;

    const stored: string[] = [];
    for await (const e of writer.api.events.stream(project.id)) if (e.ticket_id !== null) stored.push(e.event_id);
    await waitFor(`all ${stored.length} messages`, () => rec.messages.length >= stored.length, 30_000);
    expect(rec.seqs).toEqual(range(1, stored.length));
    expect(rec.messages.map((m) => m.event_id)).toEqual(stored);
    expect(rec.path).toContain("live>reconnecting");
    writer.close();
    reader.close();
  });
});
