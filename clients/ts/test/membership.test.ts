/**
 * Member removal: a removed member's project sockets close with 4403 and the
 * subscriptions stop for good with reason `forbidden` (no reconnect loop),
 * while the same user's notification channel stays live.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Recorder } from "./recorder.js";
import { TestServer, uniqueKey } from "./server.js";

let server: TestServer;
beforeAll(async () => {
  server = await new TestServer().start();
});
afterAll(async () => {
  await server.stop();
});

describe("member removal", () => {
  it("4403 closes tickets and presence with reason forbidden; notifications stay live", async () => {
    const { client: admin } = await server.user("admin");
    const project = (await admin.api.projects.create({ key: uniqueKey(), name: "Removal" })).data;
    const { client: bob, user } = await server.user("bob");
    await admin.api.members.add(project.id, user.username);

    const tickets = new Recorder(bob.tickets(project.id));
    const presence = new Recorder(bob.presence(project.id));
    const notifications = new Recorder(bob.notifications());
    await Promise.all([tickets.reach("live"), presence.reach("live"), notifications.reach("live")]);

    await admin.api.members.remove(project.id, user.id);
    await tickets.reach("closed");
    await presence.reach("closed");
    expect(tickets.states.at(-1)).toEqual({ from: "live", to: "closed", reason: "forbidden", code: 4403 });
    expect(presence.states.at(-1)).toEqual({ from: "live", to: "closed", reason: "forbidden", code: 4403 });

    // Still closed after new activity: no reconnect attempts.
    await admin.api.tickets.create(project.id, { title: "after removal" });
    const again = new Recorder(bob.tickets(project.id));
    await again.reach("closed");
    expect(again.handle.closeReason).toBe("forbidden");
    expect(tickets.handle.state).toBe("closed");
    expect(notifications.handle.state).toBe("live");
    admin.close();
    bob.close();
  });
});
