/**
 * Picks the thread count for one-token decode steps from how long those steps take, between the
 * default count and one alternative (`--threads auto`).
 *
 * Why measure rather than fix a count: which count is faster depends on things no rule sees.
 * On the 2-core box, the prebuilt binary's 2-thread steps ran at ~190 tok/s for some streams and
 * at 45–65 for others, depending on where the kernel placed the worker thread each decode starts
 * (docs/configuration.md); 1 thread ran at ~170 either way. Any build's spinning threads also
 * lose to one thread when other work is busy on the machine.
 *
 * Why only when asked: the thread count can change results. Greedy text of the 100M bench model
 * at 1 and at 2 threads was identical for the first 253 tokens and then diverged (each count repeatable),
 * so with this chooser a temperature-0 request's output past a few hundred tokens can depend on
 * the timing of the steps before it.
 *
 * How: the count in use is timed on every one-token step (a moving average); the other is tried
 * on a single step now and then — after a short warm-up, then every `interval` steps, doubling
 * while it keeps losing (so a losing alternative costs little), and at once when the count in use
 * has become slower than the alternative's last time. A try that beats the count in use by
 * `margin` makes it the count in use.
 */
export interface ThreadChooserTuning {
  /** One-token steps on the count in use before the alternative is first tried. */
  warmup: number;
  /** Steps between tries of the alternative, at first and after a switch. */
  interval: number;
  maxInterval: number;
  /** Weight of the newest step in the moving average of the count in use. */
  alpha: number;
  /** The alternative must take at most this fraction of the time of the count in use. */
  margin: number;
}

/** What others may read of a chooser: the count in use and the times measured. */
export type OneTokenThreads = Pick<ThreadChooser, "current" | "measuredMs">;

const TUNING: ThreadChooserTuning = { warmup: 8, interval: 64, maxInterval: 1024, alpha: 0.2, margin: 0.95 };

export class ThreadChooser {
  private inUse: number;
  /** The two counts, or undefined when there is nothing to choose. */
  private readonly pair: readonly [number, number] | undefined;
  private readonly ms = new Map<number, number>();
  private sinceTry = 0;
  private interval: number;

  constructor(
    first: number,
    /** The other count to try; undefined (or equal to `first`) = always `first`. */
    alternative: number | undefined,
    private readonly tuning: ThreadChooserTuning = TUNING,
  ) {
    this.inUse = first;
    this.pair = alternative === undefined || alternative === first ? undefined : [first, alternative];
    this.interval = tuning.interval;
  }

  /** The count in use now. */
  get current(): number {
    return this.inUse;
  }

  /** Average ms per one-token step in use, and the last try of the other count, by thread count. */
  get measuredMs(): ReadonlyMap<number, number> {
    return this.ms;
  }

  /** The count for the next one-token step. */
  next(): number {
    const other = this.other();
    if (other === undefined) return this.inUse;
    const inUseMs = this.ms.get(this.inUse);
    if (inUseMs === undefined) return this.inUse;
    const otherMs = this.ms.get(other);
    if (otherMs === undefined) return this.sinceTry >= this.tuning.warmup ? other : this.inUse;
    return this.sinceTry >= this.interval || inUseMs > otherMs ? other : this.inUse;
  }

  /** Records how long a one-token step run on `threads` took. */
  record(threads: number, ms: number): void {
    // Timed with or without an alternative: /health shows it either way.
    if (threads === this.inUse) {
      const avg = this.ms.get(threads);
      this.ms.set(threads, avg === undefined ? ms : avg + this.tuning.alpha * (ms - avg));
      this.sinceTry++;
      return;
    }
    if (threads !== this.other()) return;
    this.ms.set(threads, ms);
    this.sinceTry = 0;
    const inUseMs = this.ms.get(this.inUse)!;
    if (ms <= inUseMs * this.tuning.margin) {
      this.inUse = threads;
      this.interval = this.tuning.interval;
    } else {
      this.interval = Math.min(this.tuning.maxInterval, this.interval * 2);
    }
  }

  private other(): number | undefined {
    return this.pair?.find((t) => t !== this.inUse);
  }
}
