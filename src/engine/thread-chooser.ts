import { median } from "./rates.js";

/**
 * Picks the thread count for one-token decode steps from how long those steps take, between the
 * default count and one alternative (`--threads auto`, the default).
 *
 * Why measure rather than fix a count: which count is faster depends on things no rule sees.
 * On the 2-core box, the prebuilt binary's 2-thread steps ran at ~190 tok/s for some streams and
 * at 45–65 for others, depending on where the kernel placed the worker thread each decode starts
 * (docs/configuration.md); 1 thread ran at ~170 either way. Any build's spinning threads also
 * lose to one thread when other work is busy on the machine.
 *
 * Results: the thread count changes llama.cpp's logits only for one-token steps on sequences
 * holding more than THREAD_INVARIANT_CELLS KV cells (decode-loop.ts), and the decode loop does not
 * follow the chooser there: it uses the configured count. So text under `auto` is the text without it.
 *
 * How: the count in use is timed on every one-token step (the median of its last `window` steps,
 * so a lone slow step — a page fault, another process — moves nothing); the other is tried for
 * `tryLength` steps now and then (their median counts): once the window is full, then every
 * `interval` steps, doubling while it keeps losing (so a losing alternative costs little), and
 * at once when the count in use has become slower than the other's last try by the margin. A try
 * that beats the count in use by `margin` makes it the count in use.
 *
 * Measured (2-core box, 100M Q8_0, 10 alternating 200-token streams): with the native build an
 * earlier version (a moving average, one-step tries, a move on any slower step) left the faster
 * 2 threads for 1 after single slow steps: 152 tok/s median against 175 without `auto`.
 */
export interface ThreadChooserTuning {
  /** One-token steps of the count in use whose median stands for it; also the steps before a first try, and between tries. */
  window: number;
  /** Steps a try of the other count runs. */
  tryLength: number;
  /** Steps between tries of the alternative, at first and after a switch. */
  interval: number;
  maxInterval: number;
  /** The alternative must take at most this fraction of the time of the count in use. */
  margin: number;
}

/** What others may read of a chooser: the count in use and the times measured. */
export type OneTokenThreads = Pick<ThreadChooser, "current" | "measuredMs">;

const TUNING: ThreadChooserTuning = { window: 16, tryLength: 4, interval: 64, maxInterval: 1024, margin: 0.95 };

export class ThreadChooser {
  private inUse: number;
  /** The two counts, or undefined when there is nothing to choose. */
  private readonly pair: readonly [number, number] | undefined;
  /** The last `window` step times of the count in use. */
  private recent: number[] = [];
  /** Step times of the try in progress. */
  private trial: number[] = [];
  /** Median of the other count's last try. */
  private otherMs: number | undefined;
  /** Steps of the count in use since the last try (or since the start). */
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

  /** Ms per one-token step by thread count: the recent median of the count in use, the other's last try. */
  get measuredMs(): ReadonlyMap<number, number> {
    const ms = new Map<number, number>();
    if (this.recent.length > 0) ms.set(this.inUse, median(this.recent));
    const other = this.other();
    if (other !== undefined && this.otherMs !== undefined) ms.set(other, this.otherMs);
    return ms;
  }

  /** The count for the next one-token step. */
  next(): number {
    const other = this.other();
    if (other === undefined) return this.inUse;
    if (this.trial.length > 0) return other;
    if (this.recent.length < this.tuning.window || this.sinceTry < this.tuning.window) return this.inUse;
    if (this.otherMs === undefined || this.sinceTry >= this.interval) return other;
    return median(this.recent) * this.tuning.margin >= this.otherMs ? other : this.inUse;
  }

  /** Records how long a one-token step run on `threads` took. */
  record(threads: number, ms: number): void {
    // Timed with or without an alternative: /health shows it either way.
    if (threads === this.inUse) {
      this.recent.push(ms);
      if (this.recent.length > this.tuning.window) this.recent.shift();
      this.sinceTry++;
      return;
    }
    if (threads !== this.other()) return;
    this.trial.push(ms);
    if (this.trial.length < this.tuning.tryLength) return;
    const tried = median(this.trial);
    const inUseMs = median(this.recent);
    this.sinceTry = 0;
    if (tried <= inUseMs * this.tuning.margin) {
      this.otherMs = inUseMs;
      this.recent = this.trial;
      this.inUse = threads;
      this.interval = this.tuning.interval;
    } else {
      this.otherMs = tried;
      this.interval = Math.min(this.tuning.maxInterval, this.interval * 2);
    }
    this.trial = [];
  }

  private other(): number | undefined {
    return this.pair?.find((t) => t !== this.inUse);
  }
}
