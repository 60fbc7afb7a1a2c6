/** Records what a channel handle emits, for assertions. */

import type { ChannelHandle, StateChange, SubscriptionState } from "../src/index.js";
import type { ChannelKind, ChannelMessages } from "../src/types.js";
import { waitFor } from "./server.js";

export class Recorder<K extends ChannelKind> {
  readonly states: StateChange[] = [];
  readonly messages: ChannelMessages[K][] = [];
  readonly resyncs: number[] = [];
  readonly replayed: number[] = [];

  constructor(readonly handle: ChannelHandle<K>) {
    handle.on("state", (s) => this.states.push(s));
    handle.on("message", (m) => {
      this.messages.push(m);
      if ("seq" in m && handle.state === "replaying") this.replayed.push(m.seq);
    });
    handle.on("resync", ({ seq }) => this.resyncs.push(seq));
  }

  /** The seqs of sequenced messages, in emission order. */
  get seqs(): number[] {
    return this.messages.flatMap((m) => ("seq" in m ? [m.seq] : []));
  }

  /** Transitions as "from>to" strings. */
  get path(): string[] {
    return this.states.map((s) => `${s.from}>${s.to}`);
  }

  async reach(state: SubscriptionState, timeoutMs?: number): Promise<void> {
    await waitFor(`${this.handle.key} to be ${state} (now ${this.handle.state})`, () => this.handle.state === state, timeoutMs);
  }

  async count(n: number, timeoutMs?: number): Promise<void> {
    await waitFor(`${n} messages on ${this.handle.key} (have ${this.messages.length})`, () => this.messages.length >= n, timeoutMs);
  }
}

/** 1..n */
export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
