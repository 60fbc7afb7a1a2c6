/**
 * Where a subscription keeps the last seq it emitted per channel, so a page
 * reload can resume with `since` instead of starting over.
 */

export interface PositionStore {
  get(key: string): number | undefined;
  set(key: string, seq: number): void;
  delete(key: string): void;
}

/** The default: positions live as long as the client object. */
export class MemoryPositionStore implements PositionStore {
  private readonly map = new Map<string, number>();
  get(key: string): number | undefined {
    return this.map.get(key);
  }
  set(key: string, seq: number): void {
    this.map.set(key, seq);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
}

/** The part of the Web Storage API the adapter uses (sessionStorage, localStorage, or a fake). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * Keeps positions in `sessionStorage` (per tab, survives reloads). Storage that
 * throws (quota, private mode) degrades to "no stored position", never to an error.
 */
export class WebStoragePositionStore implements PositionStore {
  constructor(
    private readonly storage: StorageLike,
    private readonly prefix = "ticketflow:seq:",
  ) {}

  get(key: string): number | undefined {
    try {
      const raw = this.storage.getItem(this.prefix + key);
      if (raw === null) return undefined;
      const n = Number(raw);
      return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
    } catch {
      return undefined;
    }
  }

  set(key: string, seq: number): void {
    try {
      this.storage.setItem(this.prefix + key, String(seq));
    } catch {
      // Best effort: losing a stored position only costs a REST refetch later.
    }
  }

  delete(key: string): void {
    try {
      this.storage.removeItem(this.prefix + key);
    } catch {
      // See set().
    }
  }
}

/** `sessionStorage` of the browser; undefined where there is none (Node, SSR). */
export function sessionStoragePositionStore(prefix?: string): PositionStore | undefined {
  const storage = (globalThis as { sessionStorage?: StorageLike }).sessionStorage;
  return storage ? new WebStoragePositionStore(storage, prefix) : undefined;
}
