/**
 * Test harness: starts a real ticketflow server (embedded mode, or PostgreSQL +
 * NATS when `TICKETFLOW_TEST_DATABASE_URL` and `NATS_URL` are set and asked for),
 * waits for readiness by polling HTTP with a deadline, and can SIGKILL and
 * restart it on the same data directory and port.
 */

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { get as httpGet } from "node:http";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocket } from "ws";
import { TicketflowClient, type ClientOptions, type TokenPair, type User } from "../src/index.js";

export const BIN = process.env.TICKETFLOW_BIN ?? join(homedir(), ".cache/ticketflow/target/debug/ticketflow");

export interface ServerOptions {
  replayLimit?: number;
  wsQueueLimit?: number;
  /** Run on PostgreSQL + NATS (requires `postgresAvailable()`). */
  postgres?: boolean;
}

export function postgresAvailable(): boolean {
  return Boolean(process.env.TICKETFLOW_TEST_DATABASE_URL && process.env.NATS_URL);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export class TestServer {
  readonly dataDir = mkdtempSync(join(tmpdir(), "ticketflow-ts-"));
  readonly secret = randomBytes(32).toString("hex");
  port = 0;
  private proc: ChildProcess | undefined;
  private extraArgs: string[] = [];
  private database: string | undefined;

  constructor(private readonly options: ServerOptions = {}) {}

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    if (this.port === 0) {
      this.port = await freePort();
      if (this.options.postgres) {
        this.database = `tf_ts_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
        this.extraArgs = preparePostgres(this.database);
      }
    }
    const args = ["serve", "--data-dir", this.dataDir, "--bind-addr", `127.0.0.1:${this.port}`, "--jwt-secret", this.secret];
    if (this.options.replayLimit !== undefined) args.push("--replay-limit", String(this.options.replayLimit));
    if (this.options.wsQueueLimit !== undefined) args.push("--ws-queue-limit", String(this.options.wsQueueLimit));
    args.push(...this.extraArgs);
    const log = createWriteStream(join(this.dataDir, "server.log"), { flags: "a" });
    const proc = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"], env: serverEnv() });
    proc.stdout.pipe(log);
    proc.stderr.pipe(log);
    this.proc = proc;
    // If the test worker exits without stopping us, the server goes with it.
    const reap = () => proc.kill("SIGKILL");
    process.once("exit", reap);
    proc.once("exit", () => process.off("exit", reap));
    try {
      await this.waitReady(proc);
    } catch (err) {
      // A server that never became ready must not outlive the test run.
      await this.kill();
      throw err;
    }
    return this;
  }

  /** Polls an unauthenticated GET until the server answers 401 (it is up), with a deadline. */
  private async waitReady(proc: ChildProcess): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`ticketflow exited with ${proc.exitCode}; see ${this.dataDir}/server.log`);
      if ((await statusOf(`${this.baseUrl}/api/me`)) === 401) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`ticketflow did not become ready at ${this.baseUrl}; see ${this.dataDir}/server.log`);
  }

  /** SIGKILL: no graceful close frames, exactly like a crash. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGKILL");
    await exited;
    this.proc = undefined;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  async stop(): Promise<void> {
    await this.kill();
    if (this.database) psql(`DROP DATABASE IF EXISTS ${this.database} WITH (FORCE)`);
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** An HS256 access token like the server's, with a chosen lifetime (may be already expired). */
  signToken(user: { id: string; username: string }, lifetimeSeconds: number): string {
    const now = Math.floor(Date.now() / 1000);
    const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const head = b64({ typ: "JWT", alg: "HS256" });
    const body = b64({ sub: user.id, username: user.username, iat: now, exp: now + lifetimeSeconds });
    const sig = createHmac("sha256", this.secret).update(`${head}.${body}`).digest("base64url");
    return `${head}.${body}.${sig}`;
  }

  /** A client for this server, with `ws` injected and fast reconnects for tests. */
  client(options: Partial<ClientOptions> = {}): TicketflowClient {
    return new TicketflowClient({
      baseUrl: this.baseUrl,
      WebSocket,
      backoff: { baseMs: 50, maxMs: 500 },
      ...options,
    });
  }

  /** Registers a fresh user and logs a new client in as them. */
  async user(prefix = "u", options: Partial<ClientOptions> = {}): Promise<{ client: TicketflowClient; user: User; tokens: TokenPair }> {
    const client = this.client(options);
    const username = `${prefix}_${randomUUID().slice(0, 8)}`;
    const user = await client.api.auth.register({ username, password: "correct horse battery" });
    const tokens = await client.api.auth.login({ username, password: "correct horse battery" });
    return { client, user, tokens };
  }
}

/** GET with node:http (not `fetch`, which a DOM test environment replaces); 0 when unreachable. */
function statusOf(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = httpGet(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
  });
}

function psql(sql: string): void {
  const url = new URL(process.env.TICKETFLOW_TEST_DATABASE_URL ?? "");
  execFileSync("psql", ["-h", url.hostname, "-p", url.port || "5432", "-U", url.username || "postgres", "-c", sql], { stdio: "ignore" });
}

function preparePostgres(db: string): string[] {
  psql(`CREATE DATABASE ${db}`);
  const url = new URL(process.env.TICKETFLOW_TEST_DATABASE_URL ?? "");
  url.pathname = `/${db}`;
  return ["--database-url", url.toString(), "--nats-url", process.env.NATS_URL ?? "", "--nats-prefix", db];
}

export function uniqueKey(): string {
  return `P${randomBytes(4).toString("hex").toUpperCase().replace(/[^A-Z0-9]/g, "").slice(0, 8)}`;
}

/** Waits until `cond()` holds, polling, or fails with `what` after `timeoutMs`. */
export async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Retries `fn` while the server is unreachable (during a restart), with a deadline. */
export async function whileReachable<T>(fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code !== "network_error" || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
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
