import { Worker } from "node:worker_threads";
import { workerThreadEntry } from "../worker-thread-entry.js";
import type { Block } from "./block-runner.js";
import type { BlocksJob, BlocksReply } from "./encode-worker.js";

/**
 * Encode threads for one conversion, started early (they take a moment to boot) and given the
 * whole list of blocks at once: each claims blocks from a shared counter and does its own I/O,
 * so the per-value work and the copying stay off the main event loop.
 */
export class EncodePool {
  private readonly workers: Worker[] = [];

  constructor(readonly size: number) {
    const entry = workerThreadEntry("convert/encode-worker");
    for (let i = 0; i < size; i++) this.workers.push(new Worker(entry.code, { eval: entry.eval }));
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
      const fail = (e: Error): void => {
        Atomics.store(claim, 1, 1);
        reject(e);
      };
      for (const worker of this.workers) {
        worker.on("message", (reply: BlocksReply) => {
          if ("done" in reply) onDone(reply.done);
          else if ("error" in reply) fail(new Error(reply.error));
          else if (--running === 0) resolve();
        });
        worker.on("error", fail);
        worker.on("exit", (code) => fail(new Error(`an encode thread stopped (exit code ${code})`)));
        worker.postMessage(job);
      }
    });
  }

  async close(): Promise<void> {
    for (const worker of this.workers) worker.removeAllListeners("exit");
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
