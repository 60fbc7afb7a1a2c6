/**
 * Browser-test harness: a real ticketflow server (embedded mode, from
 * `TICKETFLOW_BIN`, serving the app at `/`), small static servers standing in
 * for other origins, Debian's chromium through playwright-core (never a
 * downloaded browser), and REST helpers for the second user's changes.
 *
 * `E2E_APP=static` loads the app from an allowed second origin serving
 * web/dist instead of from the server, so an app change can be tried without
 * rebuilding the server that embeds it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, rmSync, existsSync, statSync, mkdirSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser } from "playwright-core";

export const WEB_DIR = fileURLToPath(new URL("..", import.meta.url));
export const OUTPUT_DIR = join(WEB_DIR, "e2e", "output");
const BIN = process.env.TICKETFLOW_BIN;
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => {
        resolve(port);
      });
    });
  });
}

/** Polls `cond` until it holds, or fails naming `what` at the deadline. */
export async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export class TicketflowServer {
  readonly dataDir = mkdtempSync(join(tmpdir(), "ticketflow-web-e2e-"));
  port = 0;
  private proc: ChildProcess | undefined;

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(corsOrigins: string[]): Promise<this> {
    if (!BIN) throw new Error("set TICKETFLOW_BIN to the ticketflow binary (built after web/dist, which it embeds)");
    this.port = await freePort();
    const args = ["serve", "--data-dir", this.dataDir, "--bind-addr", `127.0.0.1:${this.port}`];
    if (corsOrigins.length > 0) args.push("--cors-origins", corsOrigins.join(","));
    const log = createWriteStream(join(this.dataDir, "server.log"));
    const proc = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"], env: serverEnv() });
    proc.stdout.pipe(log);
    proc.stderr.pipe(log);
    this.proc = proc;
    const reap = () => proc.kill("SIGKILL");
    process.once("exit", reap);
    proc.once("exit", () => process.off("exit", reap));
    // Ready when an unauthenticated API call is refused (the server is up and routing).
    await waitUntil(
      `ticketflow at ${this.baseUrl} (log: ${this.dataDir}/server.log)`,
      async () => {
        if (proc.exitCode !== null) throw new Error(`ticketflow exited with ${proc.exitCode}; see ${this.dataDir}/server.log`);
        try {
          return (await fetch(`${this.baseUrl}/api/me`)).status === 401;
        } catch {
          return false;
        }
      },
      30_000,
    );
    return this;
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGKILL");
      await exited;
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

const TYPES: Record<string, string> = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css" };

/** Serves web/dist as the server would (files by path, index.html for the rest): another origin. */
export async function startStaticOrigin(port: number): Promise<Server> {
  const root = join(WEB_DIR, "dist");
  const server = createHttpServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)).replace(/^(\.\.[/\\])+/, "");
    let file = join(root, path);
    if (!file.startsWith(root) || !existsSync(file) || statSync(file).isDirectory()) file = join(root, "index.html");
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return server;
}

export async function launchBrowser(): Promise<Browser> {
  mkdirSync(OUTPUT_DIR, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}

/** A user's REST access from Node, for the changes the test makes behind the browser's back. */
export class RestUser {
  constructor(
    readonly baseUrl: string,
    readonly id: string,
    readonly username: string,
    readonly token: string,
  ) {}

  static async register(baseUrl: string, username: string, password: string): Promise<RestUser> {
    await call(baseUrl, "POST", "/api/auth/register", undefined, { username, password, display_name: `${username.charAt(0).toUpperCase()}${username.slice(1)}` });
    const tokens = (await call(baseUrl, "POST", "/api/auth/login", undefined, { username, password })) as { access_token: string };
    const me = (await call(baseUrl, "GET", "/api/me", tokens.access_token)) as { id: string };
    return new RestUser(baseUrl, me.id, username, tokens.access_token);
  }

  call(method: string, path: string, body?: unknown): Promise<unknown> {
    return call(this.baseUrl, method, path, this.token, body);
  }
}

async function call(baseUrl: string, method: string, path: string, token: string | undefined, body?: unknown): Promise<unknown> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${baseUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return text ? (JSON.parse(text) as unknown) : undefined;
}

/**
 * The environment a test server runs in: the tests' own, less the server's
 * settings, which come only from the flags a test passes (scripts/test.sh
 * exports NATS_URL, and a stray one would switch the server's mode).
 */
function serverEnv(): NodeJS.ProcessEnv {
  const kept = Object.entries(process.env).filter(([name]) => !SERVER_SETTINGS.includes(name));
  return { ...Object.fromEntries(kept), RUST_LOG: process.env.RUST_LOG ?? "warn" };
}

const SERVER_SETTINGS = [
  "BIND_ADDR", "CORS_ORIGINS", "DATABASE_POOL_SIZE", "DATABASE_URL", "JWT_SECRET", "NATS_PREFIX",
  "NATS_URL", "REPLAY_LIMIT", "TICKETFLOW_DATA_DIR", "WS_QUEUE_LIMIT",
];
