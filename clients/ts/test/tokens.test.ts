/**
 * The token session: an access token expiring under an open socket (4401 →
 * one refresh → resume with `since`, nothing lost), refresh before expiry from
 * `expires_in`, one shared refresh for concurrent callers, and a refused
 * refresh ending the session cleanly (every subscription closed, one
 * `sessionEnded` event).
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FetchLike, SessionTokens } from "../src/index.js";
import { Recorder, range } from "./recorder.js";
import { TestServer, uniqueKey, waitFor } from "./server.js";

let server: TestServer;
beforeAll(async () => {
  server = await new TestServer().start();
});
afterAll(async () => {
  await server.stop();
});

/** A fetch that counts calls to /api/auth/refresh. */
function countingFetch(): { fetch: FetchLike; refreshes: () => number } {
  let n = 0;
  return {
    fetch: (input, init) => {
      if (input.includes("/api/auth/refresh")) n += 1;
      return fetch(input, init);
    },
    refreshes: () => n,
  };
}

describe("tokens", () => {
  it("an access token expiring mid-stream: 4401 → refresh → resume, no gap, no duplicate", async () => {
    const { client: writer } = await server.user("writer");
    const project = (await writer.api.projects.create({ key: uniqueKey(), name: "Expiry" })).data;
    const { client: login, user, tokens } = await server.user("reader");
    await writer.api.members.add(project.id, user.username);
    login.close();

    // The socket's token expires in 2 s, but the client is told it lives 15 min
    // (as with a skewed clock), so no early refresh hides the 4401.
    const counting = countingFetch();
    const reader = server.client({
      fetch: counting.fetch,
      tokens: { accessToken: server.signToken(user, 2), refreshToken: tokens.refresh_token, expiresAt: Date.now() + 900_000 },
    });
    const rec = new Recorder(reader.tickets(project.id));
    await rec.reach("live");
    const ticket = (await writer.api.tickets.create(project.id, { title: "before expiry" })).data;
    await rec.count(1);

    await waitFor("a close with 4401", () => rec.states.some((s) => s.code === 4401), 10_000);
    await writer.api.tickets.update(ticket.id, { title: "after expiry" });
    await rec.count(2);
    await rec.reach("live");
    expect(counting.refreshes()).toBe(1);
    expect(reader.session.tokens?.accessToken).not.toBe(server.signToken(user, 2));
    expect(rec.seqs).toEqual(range(1, 2));
    expect(rec.path).toEqual(["connecting>live", "live>reconnecting", "reconnecting>replaying", "replaying>live"]);
    writer.close();
    reader.close();
  });

  it("refreshes before expiry from expires_in, and concurrent callers share one refresh", async () => {
    const { client: login, user, tokens } = await server.user("early");
    login.close();
    const counting = countingFetch();
    const seen: (SessionTokens | null)[] = [];
    const client = server.client({ fetch: counting.fetch, refreshLeewayMs: 60_000 });
    client.on("tokens", (t) => seen.push(t));
    // expires_in 4 s: the refresh is due at half the lifetime (leeway is capped at half).
    client.session.set({ access_token: server.signToken(user, 4), refresh_token: tokens.refresh_token, token_type: "Bearer", expires_in: 4 });
    await waitFor("a proactive refresh", () => counting.refreshes() === 1, 5_000);
    await waitFor("new tokens", () => seen.length === 2);
    expect((await client.api.auth.me()).id).toBe(user.id);

    const results = await Promise.all([client.session.refresh(), client.session.refresh(), client.api.auth.refresh()]);
    expect(counting.refreshes()).toBe(2);
    expect(new Set(results).size).toBe(1);
    client.close();
  });

  it("a refused refresh ends the session: subscriptions close with session_ended, sessionEnded fires once", async () => {
    const { client: login, user, tokens } = await server.user("ended");
    const project = (await login.api.projects.create({ key: uniqueKey(), name: "Ended" })).data;
    // Use the refresh token elsewhere first: refresh tokens are single-use, so
    // the client's copy is now refused (and its family revoked).
    await login.api.auth.refresh();
    login.close();

    const client = server.client({
      tokens: { accessToken: server.signToken(user, 1), refreshToken: tokens.refresh_token, expiresAt: Date.now() + 900_000 },
    });
    const ended: string[] = [];
    client.on("sessionEnded", (e) => ended.push(e.reason));
    const tickets = new Recorder(client.tickets(project.id));
    const notifications = new Recorder(client.notifications());
    await tickets.reach("live");
    await tickets.reach("closed", 10_000);
    await notifications.reach("closed");
    expect(tickets.handle.closeReason).toBe("session_ended");
    expect(notifications.handle.closeReason).toBe("session_ended");
    expect(ended).toEqual(["refresh_refused"]);
    expect(client.session.tokens).toBeNull();
    await expect(client.api.auth.me()).rejects.toMatchObject({ code: "no_session" });
    client.close();
  });

  it("a REST call with an expired access token refreshes once and succeeds", async () => {
    const { client: login, user, tokens } = await server.user("rest");
    login.close();
    const counting = countingFetch();
    const client = server.client({
      fetch: counting.fetch,
      tokens: { accessToken: server.signToken(user, -10), refreshToken: tokens.refresh_token, expiresAt: Date.now() + 900_000 },
    });
    const [a, b] = await Promise.all([client.api.auth.me(), client.api.projects.list()]);
    expect(a.id).toBe(user.id);
    expect(b.items).toEqual([]);
    expect(counting.refreshes()).toBe(1);
    client.close();
  });
});
