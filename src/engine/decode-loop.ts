import type { Token } from "node-llama-cpp";
import type { NativeContext, NativeSampler } from "./native-context.js";
import { DraftPayoff } from "./speculative/payoff.js";
import type { Speculation } from "./speculative/speculation.js";
import { ThreadChooser } from "./thread-chooser.js";

/** Why a job stopped producing tokens (an error is thrown from `next()` instead). */
export type JobEnd = "eog" | "length" | "cancelled";

export interface DecodeJobOptions {
  /** The slot's sequence id in the context. */
  sequenceId: number;
  /** Tokens to evaluate first: the uncached prompt suffix (at least one token). */
  tokens: readonly Token[];
  /** KV position of `tokens[0]` (the cached prefix length). */
  position: number;
  sampler: NativeSampler;
  /**
   * A greedy sampler with nothing else in its chain, asked for the full distribution at each step
   * when the request wants log-probabilities (the model's own, before the request's filters).
   */
  probe?: NativeSampler;
  /** Tokens to sample at most (≥ 1). */
  maxTokens: number;
  /**
   * The slot's record of what its sequence's KV cache holds: the loop appends what it evaluates,
   * and empties it when a failed decode leaves the cache unknown (the cache is then cleared).
   */
  cache: Token[];
  /** Drafts tokens for the target model to check several at a time (speculative decoding); absent = off. */
  speculation?: Speculation;
}

/** A sampled token, with the probe's distribution at that step when asked for ([id, p, id, p, …], best first). */
export interface SampledToken {
  token: Token;
  distribution?: number[];
}

/** What sampling one output gave: a token id (-1 = none), or the error that stopped it. */
type SampleResult = { token: number | Error; distribution?: number[] };

/** A generating job's draft in this step's batch, after its pending token, each with its logits' batch index. */
interface DraftInBatch {
  job: DecodeJob;
  tokens: Token[];
  /** Batch indexes of the logits at the pending token and at each draft token (the last one's give the token after a whole accepted draft). */
  indexes: Uint32Array;
}

/**
 * One request's generation inside the loop: its pending input, and a queue of sampled tokens
 * for the consumer. The loop keeps feeding each sampled token back as the next input on its
 * own, so a job takes part in every step until it ends — no consumer needs to ask in time for
 * the next batch, and a slow reader never delays the other streams.
 */
export class DecodeJob {
  pending: Token[];
  position: number;
  sampled = 0;
  end: JobEnd | undefined;
  error: unknown;
  private readonly ready: SampledToken[] = [];
  private wake: (() => void) | undefined;
  private markSettled!: () => void;
  /** Resolves once the loop no longer uses this job's sequence (safe to reuse the slot). */
  readonly settled = new Promise<void>((resolve) => (this.markSettled = resolve));

  constructor(readonly options: DecodeJobOptions) {
    this.pending = [...options.tokens];
    this.position = options.position;
  }

  /** The next sampled token, or null once the job has ended; throws the loop's error, if any. */
  async next(): Promise<SampledToken | null> {
    for (;;) {
      if (this.ready.length > 0) return this.ready.shift()!;
      if (this.error !== undefined) throw this.error;
      if (this.end !== undefined) return null;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** Stops the job; at most the step in flight finishes (its token is not delivered). */
  cancel(): void {
    if (this.end === undefined && this.error === undefined) this.end = "cancelled";
    this.ready.length = 0;
    this.notify();
  }

  get active(): boolean {
    return this.end === undefined && this.error === undefined;
  }

  /** @internal (loop) */
  deliver(sampled: SampledToken): void {
    this.ready.push(sampled);
    this.notify();
  }

  /** @internal (loop) */
  finish(end: JobEnd | undefined, error?: unknown): void {
    if (this.active) {
      this.end = end;
      this.error = error;
    }
    this.notify();
  }

  /** @internal (loop) */
  release(): void {
    this.markSettled();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

export interface DecodeLoopOptions {
  /** The context's batch size: tokens per decode at most. */
  batchSize: number;
  /** Threads for a one-token step (llama.cpp -t); the first tried when `threadsAlternative` is set. */
  threads: number;
  /** The other count one-token steps may use, whichever is measured faster (ThreadChooser). */
  threadsAlternative?: number;
  /** Threads for a step of several tokens: prompts, several streams (llama.cpp -tb). */
  batchThreads: number;
  isEndOfGeneration(token: Token): boolean;
  /** Drafts only while steps with them cost less per token than steps without (DraftPayoff); otherwise whenever a job has one. */
  draftsWherePaying?: boolean;
}

const NO_LOGITS = new Uint32Array(0);

/**
 * Up to this many KV cells in a sequence, a one-token step gives the same logits at any thread
 * count. Past it, llama.cpp's CPU flash attention for a single query (its view of the cache is
 * padded to 256 cells, so 512 or more) splits the cells among the threads and merges partial
 * softmaxes, and the thread count changes the sums. Measured on the 100M bench model: greedy text
 * at 1 and 2 threads parted at KV positions 258–290 for prompts of 5–201 tokens, never before;
 * steps of several tokens matched the 1-thread text at either count.
 */
export const THREAD_INVARIANT_CELLS = 256;

/**
 * The only thing that decodes on a model's context: every step packs all active jobs into one
 * batch (one token per generating job, prompt chunks in the rest of the batch, oldest job first),
 * decodes it, samples each job that reached its end of input, and goes again at once. KV-cache
 * erasures wait for the gap between two steps, so they never race a decode. A generating job with
 * speculation adds a draft after its pending token, in room the batch has left (`verify`).
 *
 * Batch entries are in ascending sequence id: llama.cpp (non-unified KV cache) puts sequences into
 * one micro-batch only in consecutive, increasing id order (`split_equal(…, sequential = true)`).
 * Threads are set per step (llama-server's -t / -tb): a one-token step is memory-bound and its
 * extra spinning threads compete with the HTTP side, a many-token step is compute-bound.
 */
export class DecodeLoop {
  private readonly jobs: DecodeJob[] = [];
  private readonly erasures: { sequenceId: number; start: number; done: () => void }[] = [];
  private readonly exclusive: { task: () => Promise<unknown>; settle: (outcome: PromiseSettledResult<unknown>) => void }[] = [];
  private running = false;
  private threads = -1;
  /** Picks the thread count of one-token steps. */
  readonly oneTokenThreads: ThreadChooser;
  /** Whether drafts pay on this model: measured from steps with and without them. */
  private readonly payoff = new DraftPayoff();

  constructor(
    private readonly context: NativeContext,
    private readonly options: DecodeLoopOptions,
  ) {
    this.oneTokenThreads = new ThreadChooser(options.threads, options.threadsAlternative);
  }

  start(job: DecodeJob): void {
    if (job.pending.length === 0 || job.options.maxTokens < 1) throw new Error("a decode job needs input and room for a token");
    this.jobs.push(job);
    this.kick();
  }

  /** Drops a sequence's cache from `start` on, between two steps. */
  erase(sequenceId: number, start: number): Promise<void> {
    return new Promise((done) => {
      this.erasures.push({ sequenceId, start, done });
      this.kick();
    });
  }

  /**
   * Runs `task` between two steps, alone: no decode is in flight while it runs and the next step
   * waits for it. For native calls that read or replace a sequence's cache (state save and load),
   * which llama.cpp does not make safe alongside a decode on the same context.
   */
  between<T>(task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.exclusive.push({ task, settle: (o) => (o.status === "fulfilled" ? resolve(o.value as T) : reject(o.reason)) });
      this.kick();
    });
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    void this.run();
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        for (const { task, settle } of this.exclusive.splice(0)) {
          try {
            settle({ status: "fulfilled", value: await task() });
          } catch (e) {
            settle({ status: "rejected", reason: e });
          }
        }
        for (const e of this.erasures.splice(0)) {
          this.context.removeTokenCellsFromSequence(e.sequenceId, e.start, -1);
          e.done();
        }
        for (let i = this.jobs.length - 1; i >= 0; i--) {
          if (this.jobs[i]!.active) continue;
          this.jobs.splice(i, 1)[0]!.release();
        }
        if (this.jobs.length === 0) return;
        await this.step();
      }
    } catch (e) {
      // A bug, not a decode error (those are handled per step): fail everyone rather than hang.
      for (const job of this.jobs.splice(0)) {
        job.finish(undefined, e);
        job.release();
      }
    } finally {
      this.running = false;
      if (this.exclusive.length > 0 || this.erasures.length > 0 || this.jobs.length > 0) this.kick();
    }
  }

  /** Tokens each job evaluates this step: one per job first, then the rest of the batch in arrival order. */
  private plan(): Map<DecodeJob, number> {
    const take = new Map<DecodeJob, number>();
    let room = this.options.batchSize;
    for (const job of this.jobs) {
      if (room === 0) break;
      take.set(job, 1);
      room--;
    }
    for (const job of this.jobs) {
      if (room === 0) break;
      const now = take.get(job);
      if (now === undefined) continue;
      const more = Math.min(job.pending.length - now, room);
      take.set(job, now + more);
      room -= more;
    }
    return take;
  }

  private async step(): Promise<void> {
    const take = this.plan();
    const batch = [...take.keys()].sort((a, b) => a.options.sequenceId - b.options.sequenceId);
    let size = 0;
    for (const n of take.values()) size += n;
    // Measured for `auto` only (the payoff is read nowhere else), from before drafting: a draft
    // model's steps are part of what drafts cost.
    const cpuAtStart = this.options.draftsWherePaying && this.generatingOnly(take) ? process.cpuUsage() : undefined;
    const planned = this.drafts(take, this.options.batchSize - size);
    const drafts = planned instanceof Promise ? await planned : planned;
    for (const d of drafts.values()) size += d.length;
    const ctx = this.context;
    ctx.initBatch(size);
    const outputs: { job: DecodeJob; index: number }[] = [];
    const verifying: DraftInBatch[] = [];
    for (const job of batch) {
      const n = take.get(job)!;
      const draft = drafts.get(job);
      if (draft) {
        // The pending token and the draft after it, with logits at every position: sampling index
        // i checks draft token i.
        const tokens = Uint32Array.from([job.pending[0]!, ...draft]);
        const indexes = ctx.addToBatch(job.options.sequenceId, job.position, tokens, tokens.map((_, i) => i));
        outputs.push({ job, index: indexes[0]! });
        verifying.push({ job, tokens: draft, indexes });
        continue;
      }
      const last = n === job.pending.length;
      const indexes = ctx.addToBatch(job.options.sequenceId, job.position, Uint32Array.from(job.pending.slice(0, n)), last ? Uint32Array.of(n - 1) : NO_LOGITS);
      if (last) outputs.push({ job, index: indexes[0]! });
    }
    const chosen = size === 1 ? this.oneTokenThreads.next() : undefined;
    // Past the invariant cells the chooser may not pick: the configured count keeps the text what
    // it is without `auto` (temperature 0 repeatable, whatever the timing).
    const threads = chosen === undefined ? this.options.batchThreads : batch[0]!.position >= THREAD_INVARIANT_CELLS ? this.options.threads : chosen;
    if (threads !== this.threads) {
      ctx.setThreads(threads);
      this.threads = threads;
    }
    const started = performance.now();
    // Only steps of generating jobs alone are compared (a prompt chunk would count as draft cost).
    const emittedBefore = cpuAtStart !== undefined ? batch.reduce((n, job) => n + job.sampled, 0) : undefined;
    const cpuBefore = cpuAtStart;
    try {
      await ctx.decodeBatch();
    } catch (e) {
      // What the failed batch left in these sequences' caches is unknown: clear them.
      for (const job of batch) {
        ctx.removeTokenCellsFromSequence(job.options.sequenceId, 0, -1);
        job.options.cache.length = 0;
        job.finish(undefined, e);
      }
      return;
    }
    if (threads === chosen) this.oneTokenThreads.record(threads, performance.now() - started);
    for (const job of batch) {
      const n = take.get(job)!;
      for (const token of job.pending.splice(0, n)) job.options.cache.push(token);
      job.position += n;
    }
    const sampled = await this.sample(outputs);
    const firsts = new Map<DecodeJob, SampleResult>();
    for (let i = 0; i < outputs.length; i++) {
      const job = outputs[i]!.job;
      if (drafts.has(job)) firsts.set(job, sampled[i]!);
      else if (this.emit(job, sampled[i]!)) job.pending.push(sampled[i]!.token as Token);
    }
    if (verifying.length > 0) await Promise.all(verifying.map((v) => this.verify(v, firsts.get(v.job)!)));
    if (emittedBefore !== undefined) {
      const emitted = batch.reduce((n, job) => n + job.sampled, 0) - emittedBefore;
      const cpu = process.cpuUsage(cpuBefore);
      this.payoff.record(batch.length, verifying.length > 0, (cpu.user + cpu.system) / 1000, emitted);
    }
  }

  /** Whether every job in the step generates (one pending token, no prompt): steps comparable with and without drafts. */
  private generatingOnly(take: Map<DecodeJob, number>): boolean {
    for (const [job, n] of take) if (n !== 1 || job.sampled === 0 || job.pending.length !== 1) return false;
    return true;
  }

  /** Hands a sampled token to its job; false when the job ends with it (or had ended before). */
  private emit(job: DecodeJob, { token, distribution }: SampleResult): boolean {
    if (!job.active) return false;
    if (typeof token !== "number" || token < 0) {
      job.finish(undefined, typeof token === "number" ? new Error("the sampler found no token to choose") : token);
      return false;
    }
    if (this.options.isEndOfGeneration(token as Token)) {
      job.finish("eog");
      return false;
    }
    job.deliver({ token: token as Token, distribution });
    job.sampled++;
    if (job.sampled < job.options.maxTokens) return true;
    job.finish("length");
    return false;
  }

  /**
   * Generating jobs that get a draft this step, within `room` batch tokens: each drafts after its
   * pending token, at most the tokens it may still emit less the one sampled anyway. Drafts from a
   * draft model come asynchronously (all jobs' at once: its context batches them); prompt lookup's
   * at once, and then so does the map.
   */
  private drafts(take: Map<DecodeJob, number>, room: number): Map<DecodeJob, Token[]> | Promise<Map<DecodeJob, Token[]>> {
    const drafts = new Map<DecodeJob, Token[]>();
    const drafting = [...take].filter(([job, n]) => job.options.speculation && job.sampled > 0 && n === 1 && job.pending.length === 1);
    if (drafting.length === 0 || (this.options.draftsWherePaying && !this.payoff.allows())) return drafts;
    const coming: [DecodeJob, Promise<Token[]>][] = [];
    for (const [job] of drafting) {
      if (room <= 0) break;
      const speculation = job.options.speculation!;
      const n = speculation.length(Math.min(room, job.options.maxTokens - job.sampled - 1));
      if (n === 0) continue;
      const draft = speculation.draft(job.options.cache, job.pending[0]!, n);
      if (draft instanceof Promise) {
        coming.push([job, draft]);
        room -= n;
      } else if (draft.length > 0) {
        drafts.set(job, draft);
        room -= draft.length;
      }
    }
    if (coming.length === 0) return drafts;
    return Promise.all(
      coming.map(async ([job, draft]) => {
        // A draft that failed only costs its speedup: the target model decides every token anyway.
        const tokens = await draft.catch(() => []);
        if (tokens.length > 0) drafts.set(job, tokens);
      }),
    ).then(() => drafts);
  }

  /**
   * Checks a draft against the target model: the token sampled after the pending one is emitted;
   * while it equals the next draft token, the logits after that draft token (already computed) give
   * the next one. So the job's own sampler draws exactly the tokens, and as often, as it would one
   * step at a time, and never at a position past the first mismatch: it also takes each token in
   * (penalties, grammar). With a deterministic drafter that is standard speculative sampling, the
   * target distribution kept. The KV cells of the rejected draft tokens are dropped.
   */
  private async verify({ job, tokens, indexes }: DraftInBatch, first: SampleResult): Promise<void> {
    let result = first;
    let accepted = 0;
    let going = this.emit(job, result);
    while (going && accepted < tokens.length && result.token === tokens[accepted]) {
      accepted++;
      result = await this.sampleAt(job, indexes[accepted]!);
      going = this.emit(job, result);
    }
    // The cache holds the pending token (recorded by the step) and the accepted draft tokens.
    for (let i = 0; i < accepted; i++) job.options.cache.push(tokens[i]!);
    job.position += accepted;
    job.options.speculation!.record(tokens.length, accepted);
    if (accepted < tokens.length && !this.context.removeTokenCellsFromSequence(job.options.sequenceId, job.position, -1)) {
      // A cache that cannot drop its tail (recurrent state) would keep the rejected tokens: stop rather than answer from them.
      this.context.removeTokenCellsFromSequence(job.options.sequenceId, 0, -1);
      job.options.cache.length = 0;
      job.finish(undefined, new Error("this model's cache cannot drop rejected draft tokens; run it with --speculative off"));
      return;
    }
    if (going) job.pending.push(result.token as Token);
  }

  /**
   * Samples every output of the last decode. The first read of logits after a decode puts the
   * batch's outputs back in batch order by swapping rows in place (llama.cpp's
   * `llama_context::output_reorder`, when several sequences were split into micro-batches), so it
   * runs alone: with more than one libuv pool thread, two samples doing it at once swapped the
   * same rows twice and sampled from wrong logits (4 concurrent prompts: 5 runs in 290). The rest
   * only read, and are queued together.
   */
  private async sample(outputs: { job: DecodeJob; index: number }[]): Promise<SampleResult[]> {
    const one = ({ job, index }: { job: DecodeJob; index: number }): Promise<SampleResult> => this.sampleAt(job, index);
    if (outputs.length === 0) return [];
    const first = await one(outputs[0]!);
    return [first, ...(await Promise.all(outputs.slice(1).map(one)))];
  }

  /** Samples one output of the last decode with the job's sampler (and its probe, when it has one). */
  private async sampleAt(job: DecodeJob, index: number): Promise<SampleResult> {
    try {
      const token = await this.context.sampleToken(index, job.options.sampler);
      if (!job.options.probe) return { token };
      const [, distribution] = await this.context.sampleToken(index, job.options.probe, true, false);
      return { token, distribution };
    } catch (e) {
      return { token: e as Error };
    }
  }
}
