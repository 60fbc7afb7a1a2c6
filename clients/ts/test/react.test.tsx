// @vitest-environment happy-dom
/**
 * The React hooks in a DOM (happy-dom, @testing-library/react) against the
 * same real server: the ticket list follows the stream from the REST page,
 * notifications keep items/unread count and call back per live notification,
 * presence shows who is here and what they view/type, and the connection
 * state is exposed.
 */

import { act, cleanup, render, screen, waitFor } from "@testing-library/react";
import { type ReactNode, useState } from "react";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Notification, type TicketflowClient, sessionStoragePositionStore } from "../src/index.js";
import { TicketflowProvider, useConnectionState, useNotifications, usePresence, useTicketStream } from "../src/react/index.js";
import { Recorder } from "./recorder.js";
import { TestServer, uniqueKey } from "./server.js";

let server: TestServer;
const clients: TicketflowClient[] = [];
beforeAll(async () => {
  server = await new TestServer().start();
  // The page is served from the API's origin (as behind one reverse proxy), so
  // happy-dom's fetch, which enforces CORS like a browser, needs no CORS headers.
  const dom = (globalThis as unknown as { happyDOM?: { setURL(url: string): void } }).happyDOM;
  if (!dom) throw new Error("this file needs the happy-dom environment");
  dom.setURL(`${server.baseUrl}/app`);
});
afterEach(() => {
  cleanup();
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  await server.stop();
});

async function user(prefix: string) {
  const u = await server.user(prefix);
  clients.push(u.client);
  return u;
}

function withClient(client: TicketflowClient, ui: ReactNode) {
  return render(<TicketflowProvider client={client}>{ui}</TicketflowProvider>);
}

const timeout = { timeout: 10_000 };

function TicketList({ projectId }: { projectId: string }) {
  const { tickets, loading, state } = useTicketStream(projectId);
  const connection = useConnectionState();
  return (
    <div>
      <p data-testid="meta">{`${loading ? "loading" : "loaded"} ${state} ${connection.state}`}</p>
      <ul>
        {tickets.map((t) => (
          <li key={t.id} data-testid="ticket">{`${t.key} ${t.title} ${t.status.name}`}</li>
        ))}
      </ul>
    </div>
  );
}

describe("React hooks", () => {
  it("useTicketStream starts from the REST list and follows creates, updates and deletes", async () => {
    const { client: alice } = await user("alice");
    const project = (await alice.api.projects.create({ key: uniqueKey(), name: "Board" })).data;
    const first = await alice.api.tickets.create(project.id, { title: "from REST" });
    const { client: viewer, user: viewerUser } = await user("viewer");
    await alice.api.members.add(project.id, viewerUser.username);

    withClient(viewer, <TicketList projectId={project.id} />);
    await waitFor(() => expect(screen.getByTestId("meta").textContent).toBe("loaded live live"), timeout);
    await waitFor(() => expect(screen.getAllByTestId("ticket").map((li) => li.textContent)).toEqual([`${first.data.key} from REST Open`]), timeout);

    const second = await alice.api.tickets.create(project.id, { title: "from stream" });
    await alice.api.tickets.update(first.data.id, { status_id: 2, title: "moved" });
    await waitFor(
      () =>
        expect(screen.getAllByTestId("ticket").map((li) => li.textContent)).toEqual([
          `${first.data.key} moved In Progress`,
          `${second.data.key} from stream Open`,
        ]),
      timeout,
    );
    await alice.api.tickets.delete(first.data.id);
    await waitFor(() => expect(screen.getAllByTestId("ticket")).toHaveLength(1), timeout);
  });

  it("useNotifications: items, unread count, a callback per live notification, markRead, markAllRead", async () => {
    const { client: alice } = await user("alice");
    const { client: bob, user: bobUser } = await user("bob");
    const project = (await alice.api.projects.create({ key: uniqueKey(), name: "Inbox" })).data;
    await alice.api.members.add(project.id, bobUser.username);
    const before = await alice.api.tickets.create(project.id, { title: "earlier", assignee_id: bobUser.id });
    // Make sure the earlier notification exists before Bob's page loads, so it must not toast.
    await bob.api.notifications.list({}, { minPosition: before.position ?? 0 });

    const toasts: Notification[] = [];
    let api: ReturnType<typeof useNotifications> | undefined;
    function Bell() {
      const n = useNotifications({ onNotification: (x) => toasts.push(x) });
      api = n;
      return <span data-testid="badge">{`${n.unreadCount}/${n.items.length} ${n.state}`}</span>;
    }
    withClient(bob, <Bell />);
    await waitFor(() => expect(screen.getByTestId("badge").textContent).toBe("1/1 live"), timeout);

    const t = await alice.api.tickets.create(project.id, { title: "later" });
    await alice.api.comments.add(t.data.id, `@${bobUser.username} look`);
    await waitFor(() => expect(screen.getByTestId("badge").textContent).toBe("2/2 live"), timeout);
    expect(toasts.map((n) => n.notification_type)).toEqual(["mentioned"]);

    const newest = toasts[0];
    if (!newest || !api) throw new Error("no notification");
    const current = api;
    await act(() => current.markRead(newest.id));
    await waitFor(() => expect(screen.getByTestId("badge").textContent).toBe("1/2 live"), timeout);
    const again = api;
    await act(() => again.markAllRead());
    await waitFor(() => expect(screen.getByTestId("badge").textContent).toBe("0/2 live"), timeout);
    expect((await bob.api.notifications.list()).unread_count).toBe(0);
  });

  it("usePresence: who is here, what they view and type; setViewing reaches the others", async () => {
    const { client: alice, user: aliceUser } = await user("alice");
    const { client: bob, user: bobUser } = await user("bob");
    const project = (await alice.api.projects.create({ key: uniqueKey(), name: "Room" })).data;
    await alice.api.members.add(project.id, bobUser.username);
    const ticket = (await alice.api.tickets.create(project.id, { title: "shared" })).data;

    let presence: ReturnType<typeof usePresence> | undefined;
    const setters = new Set<unknown>();
    function Room() {
      const p = usePresence(project.id);
      presence = p;
      setters.add(p.setViewing);
      return (
        <ul>
          {p.users.map((u) => (
            <li key={u.userId} data-testid="member">{`${u.username} viewing:${u.viewingTicketId ?? "-"} typing:${u.typingTicketId ?? "-"}`}</li>
          ))}
        </ul>
      );
    }
    withClient(bob, <Room />);
    await waitFor(() => expect(screen.getAllByTestId("member").map((li) => li.textContent)).toEqual([`${bobUser.username} viewing:- typing:-`]), timeout);
    setters.clear(); // from here on the view exists: its setters must not change

    // Alice joins from another client (no React), views and types.
    const aliceRoom = new Recorder(alice.presence(project.id));
    await aliceRoom.reach("live");
    aliceRoom.handle.release();
    const handle = alice.presence(project.id);
    handle.setViewing(ticket.id);
    const aliceRec = new Recorder(handle);
    await aliceRec.reach("live");
    handle.typing(ticket.id);
    handle.typing(ticket.id); // throttled: only one message goes out
    const names = [aliceUser.username, bobUser.username].sort();
    await waitFor(
      () =>
        expect(screen.getAllByTestId("member").map((li) => li.textContent)).toEqual(
          names.map((n) => (n === aliceUser.username ? `${n} viewing:${ticket.id} typing:${ticket.id}` : `${n} viewing:- typing:-`)),
        ),
      timeout,
    );

    // Bob's setViewing reaches Alice, once: viewing the same ticket again sends nothing (his
    // typing, sent after it on the same socket, arrives after any second message would have).
    const bobViewing = () => aliceRec.messages.filter((m) => m.type === "ticket_viewing" && m.user_id === bobUser.id && m.ticket_id === ticket.id);
    act(() => presence?.setViewing(ticket.id));
    await waitFor(() => expect(bobViewing()).toHaveLength(1), timeout);
    act(() => presence?.setViewing(ticket.id));
    act(() => presence?.setTyping(ticket.id));
    await waitFor(() => expect(aliceRec.messages.some((m) => m.type === "user_typing" && m.user_id === bobUser.id)).toBe(true), timeout);
    expect(bobViewing()).toHaveLength(1);
    // The setters keep their identity across renders, so an effect that depends on them (as a
    // screen announcing what it views does) does not re-run, and re-send, on every update.
    expect(setters.size).toBe(1);

    handle.release();
    await waitFor(() => expect(screen.getAllByTestId("member")).toHaveLength(1), timeout);
  });

  it("useConnectionState: idle without channels, then each channel's state", async () => {
    const { client } = await user("conn");
    const project = (await client.api.projects.create({ key: uniqueKey(), name: "Conn" })).data;
    function Status() {
      const c = useConnectionState();
      return <p data-testid="conn">{`${c.state} ${Object.keys(c.channels).length}`}</p>;
    }
    function App() {
      const [open, setOpen] = useState(false);
      return (
        <>
          <Status />
          <button onClick={() => setOpen(!open)}>toggle</button>
          {open ? <TicketList projectId={project.id} /> : null}
        </>
      );
    }
    withClient(client, <App />);
    expect(screen.getByTestId("conn").textContent).toBe("idle 0");
    act(() => screen.getByText("toggle").click());
    await waitFor(() => expect(screen.getByTestId("conn").textContent).toBe("live 1"), timeout);
    act(() => screen.getByText("toggle").click());
    await waitFor(() => expect(screen.getByTestId("conn").textContent).toBe("idle 0"), timeout);
  });

  it("sessionStoragePositionStore: the DOM's sessionStorage carries the position across a reload", async () => {
    const { client: writer, user: me, tokens } = await user("reloader");
    const project = (await writer.api.projects.create({ key: uniqueKey(), name: "Reload" })).data;
    const store = sessionStoragePositionStore();
    if (!store) throw new Error("no sessionStorage in the DOM");
    const page1 = server.client({ positionStore: store, tokens });
    clients.push(page1);
    const before = new Recorder(page1.tickets(project.id));
    await before.reach("live");
    const t = await writer.api.tickets.create(project.id, { title: "seen" });
    await before.count(1);
    page1.close();
    expect(globalThis.sessionStorage.getItem(`ticketflow:seq:${me.id}:tickets:${project.id}`)).toBe("1");

    await writer.api.tickets.update(t.data.id, { title: "missed" });
    const page2 = server.client({ positionStore: sessionStoragePositionStore() ?? store, tokens: page1.session.tokens ?? tokens });
    clients.push(page2);
    const after = new Recorder(page2.tickets(project.id));
    await after.count(1);
    expect(after.seqs).toEqual([2]);
    expect(after.path[0]).toBe("connecting>replaying");
  });
});
