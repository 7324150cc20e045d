/**
 * Lets a slot's cache erase get node-llama-cpp's context lock. Erasing (3.21.1:
 * `eraseContextTokenRanges`) waits for that lock, and the batch loop holds it for as long as any
 * sequence has a decode queued — which, with several streams generating, is until they all finish.
 * A request landing on a slot with an old cache then could not start: measured, 6 of 8 new
 * requests waited out 63 decode steps of the other 2. While an erase is pending, generating slots
 * stop queueing their next step (`wait()`), the loop runs dry after the current batch and releases
 * the lock, the erase runs, and everyone continues in the next batch together.
 */
export class ContextGate {
  private pending = 0;
  private waiters: (() => void)[] = [];

  /** True when no lock-needing operation is waiting: decodes may be queued freely. */
  get open(): boolean {
    return this.pending === 0;
  }

  /** Runs an operation that needs the context lock, closing the gate meanwhile. */
  async run<T>(operation: () => Promise<T>): Promise<T> {
    this.pending++;
    try {
      return await operation();
    } finally {
      if (--this.pending === 0) for (const wake of this.waiters.splice(0)) wake();
    }
  }

  /** Resolves once the gate is open. */
  wait(): Promise<void> {
    return this.pending === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}
