/**
 * Ending and renewing sessions on the server: `auth.logout()` ends the session
 * there (its refresh token is refused, its sockets close) as well as locally,
 * and `auth.changePassword()` keeps this client signed in with the new pair
 * while every other session of the user ends.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Recorder } from "./recorder.js";
import { TestServer, uniqueKey } from "./server.js";

const PASSWORD = "correct horse battery";

let server: TestServer;
beforeAll(async () => {
  server = await new TestServer().start();
});
afterAll(async () => {
  await server.stop();
});

/** What the server answers to a refresh with `refreshToken` (a raw request, outside any client). */
async function refreshStatus(refreshToken: string): Promise<number> {
  const response = await fetch(`${server.baseUrl}/api/auth/refresh`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ refresh_token: refreshToken }),
  });
  return response.status;
}

describe("sessions", () => {
  it("logout ends the session on the server and locally: refresh refused, sockets closed, sessionEnded once", async () => {
    const { client, tokens } = await server.user("leaving");
    const project = (await client.api.projects.create({ key: uniqueKey(), name: "Leaving" })).data;
    const ended: string[] = [];
    client.on("sessionEnded", (e) => ended.push(e.reason));
    const tickets = new Recorder(client.tickets(project.id));
    await tickets.reach("live");

    await client.api.auth.logout();

    await tickets.reach("closed");
    expect(tickets.handle.closeReason).toBe("session_ended");
    expect(ended).toEqual(["logged_out"]);
    expect(client.session.tokens).toBeNull();
    expect(await refreshStatus(tokens.refresh_token)).toBe(401);
    client.close();
  });

  it("logout while the server is unreachable still signs out locally", async () => {
    const { client, tokens } = await server.user("offline", {
      fetch: (input, init) => (input.includes("/api/auth/logout") ? Promise.reject(new TypeError("fetch failed")) : fetch(input, init)),
    });
    await expect(client.api.auth.logout()).rejects.toMatchObject({ code: "network_error" });
    expect(client.session.tokens).toBeNull();
    // The server never heard of it: the session is still good there until it expires.
    expect(await refreshStatus(tokens.refresh_token)).toBe(200);
    client.close();
  });

  it("changePassword keeps this client signed in with the new pair and ends the user's other sessions", async () => {
    const { client, user, tokens } = await server.user("changer");
    const other = server.client();
    const otherTokens = await other.api.auth.login({ username: user.username, password: PASSWORD });

    const pair = await client.api.auth.changePassword({ current_password: PASSWORD, new_password: "battery staple horse" });

    expect(client.session.tokens?.refreshToken).toBe(pair.refresh_token);
    expect((await client.api.auth.me()).id).toBe(user.id);
    expect(await refreshStatus(tokens.refresh_token)).toBe(401);
    expect(await refreshStatus(otherTokens.refresh_token)).toBe(401);
    await expect(server.client().api.auth.login({ username: user.username, password: PASSWORD })).rejects.toMatchObject({ status: 401 });
    other.close();
    client.close();
  });

  it("a wrong current password is refused with 403 wrong_password and changes nothing", async () => {
    const { client, user, tokens } = await server.user("wrong");
    await expect(
      client.api.auth.changePassword({ current_password: "not the password", new_password: "battery staple horse" }),
    ).rejects.toMatchObject({ status: 403, code: "wrong_password" });
    expect(client.session.tokens?.refreshToken).toBe(tokens.refresh_token);
    const again = server.client();
    await again.api.auth.login({ username: user.username, password: PASSWORD });
    again.close();
    client.close();
  });
});
