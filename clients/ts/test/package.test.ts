/**
 * The published artefact: `npm pack` gives a tarball that installs into an
 * empty project (no network: from the npm cache `npm ci` filled) and whose
 * two entry points import in Node ESM and type-check in a strict consumer.
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "..");
const work = mkdtempSync(join(tmpdir(), "ticketflow-pack-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(cmd: string, args: string[], cwd: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${e.stdout ?? ""}${e.stderr ?? ""}`, { cause: err });
  }
}

function versionOf(pkg: string): string {
  return (JSON.parse(run("node", ["-p", `JSON.stringify(require('${pkg}/package.json'))`], root)) as { version: string }).version;
}

describe("npm package", () => {
  it("packs, installs and imports (ESM + .d.ts), with zero runtime dependencies", () => {
    run("npm", ["pack", "--pack-destination", work], root);
    const tarball = readdirSync(work).find((f) => f.endsWith(".tgz"));
    if (!tarball) throw new Error("npm pack produced no tarball");
    const app = join(work, "app");
    execFileSync("mkdir", ["-p", app]);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    // A React app has react and its types, at the versions the client's own tests use: from the
    // npm cache when there (the usual case), else from the registry (a fresh machine's cache may
    // lack @types/react's metadata until some project installs it).
    const deps = ["react", "@types/react"].map((p) => `${p}@${versionOf(p)}`);
    run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", join(work, tarball), ...deps], app);

    const installed = JSON.parse(run("node", ["-p", "JSON.stringify(require('./node_modules/@ticketflow/client/package.json'))"], app)) as {
      dependencies?: Record<string, string>;
    };
    expect(installed.dependencies ?? {}).toEqual({});

    writeFileSync(
      join(app, "main.mjs"),
      `import { TicketflowClient, TicketflowError, CloseCode, sessionStoragePositionStore } from "@ticketflow/client";
import { TicketflowProvider, useTicketStream, useNotifications, usePresence, useConnectionState } from "@ticketflow/client/react";
const c = new TicketflowClient({ baseUrl: "http://127.0.0.1:1", WebSocket: class {} });
console.log([typeof TicketflowClient, typeof TicketflowError, CloseCode.SlowConsumer, typeof sessionStoragePositionStore,
  typeof TicketflowProvider, typeof useTicketStream, typeof useNotifications, typeof usePresence, typeof useConnectionState,
  c.connection.state].join(" "));
c.close();`,
    );
    expect(run("node", ["main.mjs"], app).trim()).toBe(
      "function function 4008 function function function function function function idle",
    );

    writeFileSync(
      join(app, "consumer.ts"),
      `import { TicketflowClient, TicketflowError, type Ticket, type SubscriptionState } from "@ticketflow/client";
import type { TicketStream } from "@ticketflow/client/react";
export async function titles(client: TicketflowClient, pid: string): Promise<string[]> {
  const page = await client.api.tickets.list(pid, { limit: 10 });
  const t: Ticket[] = page.items;
  const s: SubscriptionState = client.tickets(pid).state;
  void s;
  try { await client.api.tickets.update("x", { title: "y" }, { ifMatch: 1 }); }
  catch (e) { if (e instanceof TicketflowError && e.code === "version_conflict") return [String(e.currentVersion)]; }
  return t.map((x) => x.title);
}
export type Stream = TicketStream["tickets"];
`,
    );
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { strict: true, module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", lib: ["ES2022", "DOM"], noEmit: true, skipLibCheck: false, types: [] },
        files: ["consumer.ts"],
      }),
    );
    run(join(root, "node_modules/.bin/tsc"), ["-p", "."], app);
  }, 120_000);
});
