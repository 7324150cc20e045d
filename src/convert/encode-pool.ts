import { Worker } from "node:worker_threads";
import { workerThreadEntry } from "../worker-thread-entry.js";
import { type Block, BlockRunner } from "./block-runner.js";
import type { BlocksJob, BlocksReply } from "./encode-worker.js";

/** How long idle threads wait for the next conversion (the conversion cache converts several in a row) before they stop. */
const IDLE_MS = 30_000;

/**
 * Encode threads, given the whole list of blocks of a conversion at once: each claims blocks
 * from a shared counter and does its own I/O, so the per-value work and the copying stay off
 * the main event loop. Until the first thread is up (starting one takes a while), the calling
 * thread converts blocks itself from the same counter.
 */
class EncodePool {
  private readonly workers: Worker[] = [];
  /** [0]: threads started and listening; each adds itself. */
  private readonly ready = new Int32Array(new SharedArrayBuffer(4));
  /** Held by a conversion. */
  busy = false;
  /** Set when a thread failed: the pool is not handed out again. */
  broken = false;
  idle?: NodeJS.Timeout;

  constructor(readonly size: number) {
    const entry = workerThreadEntry("convert/encode-worker");
    for (let i = 0; i < size; i++) {
      const worker = new Worker(entry.code, { eval: entry.eval, workerData: { ready: this.ready } });
      // A thread that fails between conversions must not take the process down with it.
      worker.on("error", () => void (this.broken = true));
      worker.on("exit", () => void (this.broken = true));
      worker.unref();
      this.workers.push(worker);
    }
  }

  /** Converts every block into the (already created) output file; `onDone` hears of each finished block. */
  run(output: string, blocks: Block[], onDone: (index: number) => void): Promise<void> {
    const claim = new Int32Array(new SharedArrayBuffer(8));
    const job: BlocksJob = {
      output, blocks, claim,
      srcBytes: blocks.reduce((m, b) => Math.max(m, b.srcBytes), 0),
      outBytes: blocks.reduce((m, b) => Math.max(m, b.outBytes), 0),
    };
    return new Promise<void>((resolve, reject) => {
      let running = this.workers.length;
      const onMessage = (reply: BlocksReply): void => {
        if ("done" in reply) onDone(reply.done);
        else if ("error" in reply) finish(new Error(reply.error));
        else if (--running === 0) finish();
      };
      const onExit = (code: number): void => finish(new Error(`an encode thread stopped (exit code ${code})`));
      const finish = (e?: Error): void => {
        for (const worker of this.workers) {
          worker.off("message", onMessage).off("error", finish).off("exit", onExit);
          worker.unref();
        }
        if (e) {
          Atomics.store(claim, 1, 1);
          this.broken = true;
          reject(e);
        } else resolve();
      };
      for (const worker of this.workers) {
        worker.ref();
        worker.on("message", onMessage).on("error", finish).on("exit", onExit);
        worker.postMessage(job);
      }
      if (Atomics.load(this.ready, 0) > 0) return;
      let runner: BlockRunner | undefined;
      try {
        runner = new BlockRunner(output, job.srcBytes, job.outBytes);
        for (let i = 0; Atomics.load(this.ready, 0) === 0 && Atomics.load(claim, 1) === 0 && (i = Atomics.add(claim, 0, 1)) < blocks.length;) {
          runner.run(blocks[i]!);
          onDone(i);
        }
      } catch (e) {
        finish(e as Error);
      } finally {
        runner?.close();
      }
    });
  }

  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

let shared: EncodePool | undefined;

/** A conversion's hold on encode threads. */
export interface EncodeThreads {
  readonly size: number;
  run(output: string, blocks: Block[], onDone: (index: number) => void): Promise<void>;
  /** Done with the threads: the process's shared ones stay up a while for the next conversion. */
  close(): Promise<void>;
}

/**
 * `size` encode threads: the process's shared ones when they are up and free (threads are
 * started once, not per conversion), else new ones, started now so that they boot while the
 * caller builds the header. A conversion running beside another gets threads of its own.
 * Idle threads do not keep the process alive.
 */
export function encodeThreads(size: number): EncodeThreads {
  if (shared && !shared.busy && (shared.size !== size || shared.broken)) {
    clearTimeout(shared.idle);
    void shared.terminate();
    shared = undefined;
  }
  let pool = shared;
  if (!pool || pool.busy) {
    pool = new EncodePool(size);
    shared ??= pool;
  }
  const own = pool;
  clearTimeout(own.idle);
  own.busy = true;
  let closed = false;
  return {
    size,
    run: (output, blocks, onDone) => own.run(output, blocks, onDone),
    close: async () => {
      if (closed) return;
      closed = true;
      own.busy = false;
      if (own !== shared || own.broken) {
        if (own === shared) shared = undefined;
        return own.terminate();
      }
      own.idle = setTimeout(() => {
        if (shared === own && !own.busy) shared = undefined;
        void own.terminate();
      }, IDLE_MS).unref();
    },
  };
}
