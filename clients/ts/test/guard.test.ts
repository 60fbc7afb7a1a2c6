/**
 * The gap/duplicate guard and the close-code decisions, driven through a
 * scripted transport (the injectable WebSocket) so the server can be made to
 * misbehave on purpose: repeat a seq, skip one, close with 1012 or 4008.
 * Backoff is set to a minute, so a test passes only if the resume is immediate.
 */

import { describe, expect, it } from "vitest";
import { Backoff, TicketflowClient, type CloseEventLike, type MessageEventLike, type WebSocketLike } from "../src/index.js";
import { Recorder } from "./recorder.js";
import { waitFor } from "./server.js";

class ScriptedSocket implements WebSocketLike {
  static all: ScriptedSocket[] = [];
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: MessageEventLike) => void) | null = null;
  onclose: ((event: CloseEventLike) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly sent: unknown[] = [];
  closedWith: number | undefined;

  constructor(readonly url: string) {
    ScriptedSocket.all.push(this);
    queueMicrotask(() => {
      this.readyState = 1;
      this.onopen?.({});
    });
  }
  get since(): string | null {
    return new URL(this.url).searchParams.get("since");
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000): void {
    this.closedWith = code;
    this.serverClose(code);
  }
  push(message: object): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  serverClose(code: number): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code, reason: "" }));
  }
  static last(): ScriptedSocket {
    const s = ScriptedSocket.all.at(-1);
    if (!s) throw new Error("no socket yet");
    return s;
  }
}

function update(seq: number): object {
  return {
    type: "ticket_update",
    action: "updated",
    seq,
    event_id: `e${seq}`,
    event_type: "TicketTitleChanged",
    actor: { id: "u", username: "u" },
    timestamp: "2026-01-01T00:00:00Z",
    data: { ticket_id: "t", key: "P-1", title: `v${seq}`, status: { id: 1, name: "Open", color: "#000" }, priority: "low", assignee: null, version: seq },
  };
}

function scriptedClient(): TicketflowClient {
  ScriptedSocket.all = [];
  return new TicketflowClient({
    baseUrl: "http://scripted.invalid",
    WebSocket: ScriptedSocket,
    backoff: { baseMs: 60_000, maxMs: 60_000 },
    fetch: () => Promise.reject(new Error("no HTTP in scripted tests")),
    tokens: { accessToken: "a.eyJzdWIiOiJ1c2VyLTEifQ.s", refreshToken: "r", expiresAt: Date.now() + 3_600_000 },
  });
}

async function connected(rec: Recorder<"tickets">, head: number): Promise<ScriptedSocket> {
  await waitFor("a socket", () => ScriptedSocket.all.length > 0);
  const socket = ScriptedSocket.last();
  await waitFor("open", () => socket.readyState === 1);
  socket.push({ type: "connection_established", channel: "tickets", user_id: "user-1", project_id: "p", seq: head });
  await rec.reach("live");
  return socket;
}

describe("gap and duplicate guard", () => {
  it("never emits a seq twice", async () => {
    const client = scriptedClient();
    const rec = new Recorder(client.tickets("p"));
    const socket = await connected(rec, 0);
    for (const seq of [1, 2, 2, 1, 3, 3]) socket.push(update(seq));
    expect(rec.seqs).toEqual([1, 2, 3]);
    client.close();
  });

  it("a jump in seq resumes from the last emitted seq instead of skipping", async () => {
    const client = scriptedClient();
    const rec = new Recorder(client.tickets("p"));
    const first = await connected(rec, 0);
    first.push(update(1));
    first.push(update(3)); // 2 is missing
    first.push(update(4)); // must not be emitted from the abandoned socket
    expect(rec.seqs).toEqual([1]);
    expect(first.closedWith).toBe(4000);
    await waitFor("a second socket", () => ScriptedSocket.all.length === 2);
    const second = ScriptedSocket.last();
    expect(second.since).toBe("1");
    await waitFor("open", () => second.readyState === 1);
    second.push({ type: "connection_established", channel: "tickets", user_id: "user-1", seq: 4 });
    expect(rec.handle.state).toBe("replaying");
    for (const seq of [2, 3, 4]) second.push(update(seq));
    second.push({ type: "replay_complete", seq: 4 });
    expect(rec.seqs).toEqual([1, 2, 3, 4]);
    expect(rec.path).toEqual(["connecting>live", "live>reconnecting", "reconnecting>replaying", "replaying>live"]);
    client.close();
  });

  it.each([1012, 4008])("close %i resumes at once with since", async (code) => {
    const client = scriptedClient();
    const rec = new Recorder(client.tickets("p"));
    const first = await connected(rec, 7);
    first.push(update(8));
    first.serverClose(code);
    await waitFor("an immediate second socket (backoff is 60 s)", () => ScriptedSocket.all.length === 2, 2_000);
    expect(ScriptedSocket.last().since).toBe("8");
    expect(rec.states.find((s) => s.to === "reconnecting")?.code).toBe(code);
    client.close();
  });

  it("an abnormal close (1006) waits for the backoff", async () => {
    const client = scriptedClient();
    const rec = new Recorder(client.tickets("p"));
    const first = await connected(rec, 0);
    first.serverClose(1006);
    await rec.reach("reconnecting");
    await new Promise((r) => setTimeout(r, 100)); // a fixed wait only to show that nothing happens
    expect(ScriptedSocket.all).toHaveLength(1);
    client.close();
    expect(rec.handle.state).toBe("closed");
  });

  it("4403 stops for good with reason forbidden", async () => {
    const client = scriptedClient();
    const rec = new Recorder(client.tickets("p"));
    const first = await connected(rec, 0);
    first.serverClose(4403);
    await rec.reach("closed");
    expect(rec.handle.closeReason).toBe("forbidden");
    expect(ScriptedSocket.all).toHaveLength(1);
    client.close();
  });
});

describe("backoff", () => {
  it("full jitter: the window doubles up to the cap and resets", () => {
    const b = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0.999999 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([99, 199, 399, 799, 999, 999]);
    b.reset();
    expect(b.next()).toBe(99);
    const zero = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0 });
    expect(zero.next()).toBe(0);
  });
});
