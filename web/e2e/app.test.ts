/**
 * The web app in a real browser against a real server: two users (alice and
 * bob, two browser contexts), live board, bell and toast, catching up after
 * going offline, resuming after a reload, presence, and CORS for a second
 * origin. Every wait is a condition with a deadline; screenshots go to
 * e2e/output/.
 */
import type { Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { OUTPUT_DIR, RestUser, TicketflowServer, freePort, launchBrowser, startStaticOrigin, waitUntil } from "./harness";

const PASSWORD = "correct horse battery";
const STATIC_APP = process.env.E2E_APP === "static";

let server: TicketflowServer;
let allowedOrigin: Server;
let refusedOrigin: Server;
let allowedPort = 0;
let refusedPort = 0;
let browser: Browser;
let aliceCtx: BrowserContext;
let bobCtx: BrowserContext;
let alicePage: Page;
let bobPage: Page;
let alice: RestUser;
let bob: RestUser;
let projectId = "";
const consoleErrors: string[] = [];

/** Where the app is: the server itself, or (E2E_APP=static) the allowed second origin. */
function app(path: string): string {
  if (!STATIC_APP) return `${server.baseUrl}${path}`;
  return `http://127.0.0.1:${allowedPort}${path}${path.includes("?") ? "&" : "?"}api=${encodeURIComponent(server.baseUrl)}`;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(OUTPUT_DIR, `${name}.png`), fullPage: false });
}

async function newUserPage(ctx: BrowserContext): Promise<Page> {
  const page = await ctx.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(`${m.text()} @ ${m.location().url}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`pageerror: ${e.message}`));
  return page;
}

async function login(page: Page, username: string, screenshot?: string): Promise<void> {
  await page.goto(app("/login"));
  await page.fill("input[name=username]", username);
  await page.fill("input[name=password]", PASSWORD);
  if (screenshot) await shot(page, screenshot);
  await page.click("button[type=submit]");
  await page.locator("[data-testid=me]").waitFor({ timeout: 15_000 });
}

interface Row {
  id: string;
  column: string;
  title: string;
  assignee: string;
}

async function boardRows(page: Page): Promise<Row[]> {
  const rows = await page.$$eval("[data-testid=ticket-card]", (cards) =>
    cards.map((c) => ({
      id: (c as HTMLElement).dataset.ticketId ?? "",
      column: c.closest("section.column")?.getAttribute("aria-label") ?? "",
      title: c.querySelector(".title")?.textContent ?? "",
      assignee: c.querySelector("[data-testid=card-assignee]")?.textContent ?? "",
    })),
  );
  return rows.sort((a, b) => a.id.localeCompare(b.id));
}

async function restRows(): Promise<Row[]> {
  const page = (await alice.call("GET", `/api/projects/${projectId}/tickets?limit=200`)) as {
    items: { id: string; title: string; status: { name: string }; assignee: { username: string } | null }[];
  };
  return page.items
    .map((t) => ({ id: t.id, column: t.status.name, title: t.title, assignee: t.assignee ? `@${t.assignee.username}` : "unassigned" }))
    .sort((a, b) => a.id.localeCompare(b.id));
}

/** Waits until the page's board shows exactly what a fresh REST read returns. */
async function boardEqualsRest(page: Page, what: string): Promise<void> {
  let last = "";
  await waitUntil(
    `${what}: board equals REST`,
    async () => {
      const [dom, rest] = await Promise.all([boardRows(page), restRows()]);
      last = `dom=${JSON.stringify(dom)}\nrest=${JSON.stringify(rest)}`;
      return JSON.stringify(dom) === JSON.stringify(rest);
    },
    30_000,
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${last}`);
  });
}

/** Seqs of the ticket-channel messages the page applied (the app's test hook). */
async function appliedSeqs(page: Page): Promise<number[]> {
  return page.evaluate((pid) => {
    const hook = (window as unknown as { __ticketflow?: { ticketSeqs: Record<string, number[]> } }).__ticketflow;
    return hook?.ticketSeqs[pid] ?? [];
  }, projectId);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

async function ticketHead(): Promise<number> {
  // Every ticket event is one ticket-channel message: the head is the count of ticket events.
  const feed = (await alice.call("GET", `/api/projects/${projectId}/events?limit=200`)) as { items: { ticket_id: string | null }[] };
  return feed.items.filter((e) => e.ticket_id !== null).length;
}

async function connectionState(page: Page): Promise<string> {
  return (await page.getAttribute("[data-testid=connection]", "data-state")) ?? "";
}

beforeAll(async () => {
  allowedPort = await freePort();
  refusedPort = await freePort();
  allowedOrigin = await startStaticOrigin(allowedPort);
  refusedOrigin = await startStaticOrigin(refusedPort);
  server = await new TicketflowServer().start([`http://127.0.0.1:${allowedPort}`]);
  alice = await RestUser.register(server.baseUrl, "alice", PASSWORD);
  bob = await RestUser.register(server.baseUrl, "bob", PASSWORD);
  browser = await launchBrowser();
  aliceCtx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  bobCtx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  alicePage = await newUserPage(aliceCtx);
  bobPage = await newUserPage(bobCtx);
});

afterAll(async () => {
  await browser.close();
  await server.stop();
  allowedOrigin.close();
  refusedOrigin.close();
});

describe("the web app", () => {
  it("alice creates a project and adds bob; a ticket assigned to bob reaches his board, bell and a toast live", async () => {
    await alicePage.goto(app("/register"));
    await shot(alicePage, "01-register");
    await login(alicePage, "alice", "02-login");
    await alicePage.fill("input[name=key]", "WEB");
    await alicePage.fill("input[name=name]", "Web app");
    await alicePage.click("form[aria-label='New project'] button[type=submit]");
    const link = alicePage.locator("[data-testid=project] a.project-link");
    await link.waitFor();
    projectId = ((await link.getAttribute("href")) ?? "").replace("/p/", "");
    expect(projectId).toMatch(/^[0-9a-f-]{36}$/);
    await alicePage.fill("input[name=member]", "bob");
    await alicePage.click("form[aria-label='Add member'] button[type=submit]");
    await alicePage.locator("[data-testid=member]", { hasText: "@bob" }).waitFor();
    await shot(alicePage, "03-projects-members");

    await login(bobPage, "bob");
    await bobPage.locator("[data-testid=project]", { hasText: "WEB" }).waitFor();
    await bobPage.click("a.project-link");
    await bobPage.locator("[data-testid=board]").waitFor();
    await waitUntil("bob live", async () => (await connectionState(bobPage)) === "live");

    await alicePage.click("a.project-link");
    await alicePage.click("[data-testid=new-ticket]");
    await alicePage.fill("form[aria-label='New ticket'] input[name=title]", "Fix login bug");
    await alicePage.selectOption("form[aria-label='New ticket'] select[name=assignee]", { label: "bob" });
    await alicePage.selectOption("form[aria-label='New ticket'] select[name=priority]", "high");
    await alicePage.click("form[aria-label='New ticket'] button[type=submit]");

    // Together: a toast fades after 6 s, however long the card took on a busy machine.
    await Promise.all([
      bobPage.locator("[data-testid=ticket-card]", { hasText: "Fix login bug" }).waitFor({ timeout: 15_000 }),
      bobPage.locator("[data-testid=unread-count]", { hasText: /^1$/ }).waitFor({ timeout: 15_000 }),
      bobPage.locator("[data-testid=toast]", { hasText: "WEB-1" }).waitFor({ timeout: 15_000 }),
    ]);
    expect(await boardRows(bobPage)).toEqual(await restRows());
    expect(await appliedSeqs(bobPage)).toEqual([1]);
    expect(((await bob.call("GET", "/api/notifications")) as { unread_count: number }).unread_count).toBe(1);
    await shot(bobPage, "04-board-live-toast");
    await bobPage.click("[data-testid=bell]");
    await bobPage.locator("[data-testid=notification]", { hasText: "WEB-1" }).waitFor();
    await shot(bobPage, "05-bell-panel");
    await bobPage.keyboard.press("Escape");
    expect(consoleErrors).toEqual([]);
  });

  it("bob goes offline while alice makes 20 changes; back online he applies each exactly once and matches REST", async () => {
    await bobCtx.setOffline(true);
    await waitUntil("bob notices he is offline", async () => (await connectionState(bobPage)) !== "live", 30_000);
    await shot(bobPage, "06-reconnecting");

    const created: string[] = [];
    for (let i = 1; i <= 4; i++) {
      const t = (await alice.call("POST", `/api/projects/${projectId}/tickets`, { title: `Offline ${i}` })) as { id: string };
      created.push(t.id);
    }
    for (let i = 0; i < 10; i++) await alice.call("PATCH", `/api/tickets/${created[i % 4] ?? ""}`, { title: `Offline ${(i % 4) + 1} rev ${i}` });
    for (let i = 0; i < 4; i++) await alice.call("PATCH", `/api/tickets/${created[i] ?? ""}`, { status_id: i % 2 === 0 ? 2 : 3 });
    await alice.call("DELETE", `/api/tickets/${created[3] ?? ""}`);
    await alice.call("DELETE", `/api/tickets/${created[2] ?? ""}`);
    expect(await ticketHead()).toBe(21);

    await bobCtx.setOffline(false);
    await waitUntil("bob live again", async () => (await connectionState(bobPage)) === "live", 40_000);
    await boardEqualsRest(bobPage, "after offline");
    await waitUntil("bob applied 21 messages", async () => (await appliedSeqs(bobPage)).length >= 21);
    expect(await appliedSeqs(bobPage)).toEqual(range(1, 21));
  });

  it("bob reloads mid-stream and resumes from his stored position (since=), missing and repeating nothing", async () => {
    const before = (await appliedSeqs(bobPage)).at(-1) ?? 0;
    const urls: string[] = [];
    bobPage.on("websocket", (ws) => urls.push(ws.url()));
    const { id: target } = (await alice.call("POST", `/api/projects/${projectId}/tickets`, { title: "Reload target" })) as { id: string };
    const changes = (async () => {
      for (let i = 0; i < 12; i++) await alice.call("PATCH", `/api/tickets/${target}`, { title: `Reload ${i}` });
    })();
    await waitUntil("some changes arrive before the reload", async () => ((await appliedSeqs(bobPage)).at(-1) ?? 0) >= before + 3);
    await bobPage.reload();
    await changes;
    const head = await ticketHead();
    await waitUntil("the tickets socket reopened", () => urls.some((u) => u.includes("/tickets/")));
    const url = new URL(urls.find((u) => u.includes("/tickets/")) ?? "");
    const since = Number(url.searchParams.get("since"));
    expect(url.searchParams.has("since")).toBe(true);
    expect(since).toBeGreaterThanOrEqual(before + 3);
    await waitUntil("bob caught up to the head", async () => ((await appliedSeqs(bobPage)).at(-1) ?? 0) >= head);
    // After the reload the page applied only what it had not seen: since+1 … head, once each.
    expect(await appliedSeqs(bobPage)).toEqual(range(since + 1, head));
    await boardEqualsRest(bobPage, "after reload");
  });

  it("presence shows both users, who views which ticket, and typing; comments suggest @mentions; as_of shows an old version", async () => {
    await alicePage.locator("[data-testid=board]").waitFor();
    await waitUntil("bob sees alice and himself", async () => {
      const names = await bobPage.$$eval("[data-testid=presence-user]", (els) => els.map((e) => (e as HTMLElement).dataset.username ?? ""));
      return names.includes("alice") && names.includes("bob");
    });
    await alicePage.locator("[data-testid=ticket-card]", { hasText: "Fix login bug" }).locator("a").click();
    await alicePage.locator("[data-testid=ticket-detail]").waitFor();
    await bobPage.locator("[data-testid=presence-user][data-username=alice][data-viewing='WEB-1']").waitFor({ timeout: 15_000 });

    await bobPage.locator("[data-testid=ticket-card]", { hasText: "Fix login bug" }).locator("a").click();
    await bobPage.locator("[data-testid=ticket-detail]").waitFor();
    const box = alicePage.locator("[data-testid=comment-body]");
    await box.click();
    // Typing is a moment, not a state: bob's page shows it for a few seconds after alice's
    // first keystroke (one message per throttle period), so bob's checks watch from before she
    // types, and a slow machine that takes longer to suggest mentions cannot miss it.
    const bobSeesTyping = Promise.all([
      bobPage.locator("[data-testid=presence-user][data-username=alice][data-typing='WEB-1']").waitFor({ timeout: 15_000 }),
      bobPage.locator("[data-testid=typing]", { hasText: "alice" }).waitFor({ timeout: 15_000 }),
    ]);
    await box.pressSequentially("Please check @b");
    await alicePage.locator("[data-testid=mention-suggestions] li", { hasText: "@bob" }).waitFor();
    await bobSeesTyping;
    await shot(alicePage, "07-ticket-detail-mention");
    await shot(bobPage, "08-presence-typing");
    await box.press("Enter");
    expect(await box.inputValue()).toBe("Please check @bob ");
    await alicePage.click(".comment-form button[type=submit]");
    await Promise.all([
      bobPage.locator("[data-testid=comment]", { hasText: "Please check @bob" }).waitFor({ timeout: 15_000 }),
      bobPage.locator("[data-testid=toast]", { hasText: /mention/i }).waitFor({ timeout: 15_000 }),
    ]);

    await alicePage.locator("[data-testid=history] button", { hasText: "show as of v1" }).click();
    await alicePage.locator("[data-testid=as-of-banner]", { hasText: "version 1" }).waitFor();
    expect(new URL(alicePage.url()).searchParams.get("as_of")).toBe("1");
    expect(await alicePage.inputValue("[data-testid=detail-title]")).toBe("Fix login bug");
    await shot(alicePage, "09-as-of");

    await alicePage.setViewportSize({ width: 390, height: 800 });
    await shot(alicePage, "10-phone-detail");
    await alicePage.goto(app(`/p/${projectId}`));
    await alicePage.locator("[data-testid=board]").waitFor();
    await shot(alicePage, "11-phone-board");
    await alicePage.setViewportSize({ width: 1280, height: 800 });
  });

  it("an announcement by alice (the seed's custom notification) reaches bob live as a toast and stays in his bell", async () => {
    const before = ((await bob.call("GET", "/api/notifications")) as { unread_count: number }).unread_count;
    const announcement = { title: "System Alert", message: "Your report is ready!" };
    const posted = alice.call("POST", `/api/projects/${projectId}/announcements`, announcement);
    await Promise.all([
      posted,
      bobPage.locator("[data-testid=toast]", { hasText: "Your report is ready!" }).waitFor({ timeout: 15_000 }),
      bobPage.locator("[data-testid=unread-count]", { hasText: new RegExp(`^${String(before + 1)}$`) }).waitFor({ timeout: 15_000 }),
    ]);
    await shot(bobPage, "14-announcement-toast");
    await bobPage.click("[data-testid=bell]");
    await bobPage.locator("[data-testid=notification]", { hasText: "Your report is ready!" }).waitFor();
    await bobPage.click("[data-testid=bell]");
    const mine = (await alice.call("GET", "/api/notifications")) as { items: { message: string }[] };
    expect(mine.items.some((n) => n.message === announcement.message)).toBe(false);
    // Through every test so far (offline, reload, presence): no console error on either page,
    // but for Chromium's own reports of the connections it refused while set offline.
    const offline = /net::ERR_INTERNET_DISCONNECTED/;
    expect(consoleErrors.filter((e) => !offline.test(e))).toEqual([]);
  });

  it("a page on an allowed second origin works against the API; one on another origin is refused, REST and WebSocket", async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const api = encodeURIComponent(server.baseUrl);
      const allowed = await ctx.newPage();
      await allowed.goto(`http://127.0.0.1:${allowedPort}/login?api=${api}`);
      await allowed.fill("input[name=username]", "alice");
      await allowed.fill("input[name=password]", PASSWORD);
      await allowed.click("button[type=submit]");
      await allowed.locator("[data-testid=project]", { hasText: "WEB" }).waitFor({ timeout: 15_000 });
      await allowed.locator("[data-testid=connection][data-state=live]").waitFor({ timeout: 15_000 });
      await shot(allowed, "12-second-origin-allowed");

      const refused = await ctx.newPage();
      await refused.goto(`http://127.0.0.1:${refusedPort}/login?api=${api}`);
      await refused.fill("input[name=username]", "alice");
      await refused.fill("input[name=password]", PASSWORD);
      await refused.click("button[type=submit]");
      await refused.locator("[role=alert]", { hasText: "cannot be reached" }).waitFor({ timeout: 15_000 });
      await shot(refused, "13-second-origin-refused");

      const probe = (page: Page) =>
        page.evaluate(
          async ({ base, token }) => {
            let rest: string;
            try {
              const r = await fetch(`${base}/api/me`, { headers: { authorization: `Bearer ${token}` } });
              rest = `status ${r.status}`;
            } catch {
              rest = "blocked";
            }
            const ws = await new Promise<string>((resolve) => {
              const sock = new WebSocket(`${base.replace("http", "ws")}/ws/notifications/?token=${token}`);
              sock.onmessage = (e) => {
                resolve((JSON.parse(String(e.data)) as { type: string }).type);
                sock.close();
              };
              sock.onclose = () => resolve("closed");
            });
            return { rest, ws };
          },
          { base: server.baseUrl, token: alice.token },
        );
      expect(await probe(allowed)).toEqual({ rest: "status 200", ws: "connection_established" });
      expect(await probe(refused)).toEqual({ rest: "blocked", ws: "closed" });
    } finally {
      await ctx.close();
    }
  });
});
