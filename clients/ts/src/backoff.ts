/**
 * Full-jitter exponential backoff (the AWS architecture blog's "full jitter"):
 * the delay is uniform in [0, min(cap, base * 2^attempt)], so clients that lost
 * the same server spread their reconnects instead of arriving together.
 */

export interface BackoffOptions {
  /** First window in ms (default 500). */
  baseMs?: number;
  /** Largest window in ms (default 20 000). */
  maxMs?: number;
  /** Random source in [0, 1), injectable for tests. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 500;
    this.maxMs = options.maxMs ?? 20_000;
    this.random = options.random ?? Math.random;
  }

  /** The next delay; each call widens the window until it reaches the cap. */
  next(): number {
    // 2^attempt is clamped so the exponent never overflows to Infinity.
    const window = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.floor(this.random() * window);
  }

  /** Called once a connection is live again: the next failure starts small. */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
