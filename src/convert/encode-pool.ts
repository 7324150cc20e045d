import { Worker } from "node:worker_threads";
import { workerThreadEntry } from "../worker-thread-entry.js";
import type { EncodeJob } from "./encode-rows.js";

type Reply = { ok: true } | { ok: false; error: string };
type Task = { job: EncodeJob; resolve: () => void; reject: (e: Error) => void };

/**
 * A few worker threads that run encode jobs on shared buffers, so a conversion uses every core
 * and keeps its per-value work off the main event loop. Jobs go to the first idle worker; a
 * job's buffers must be SharedArrayBuffers (the worker writes the output in place).
 */
export class EncodePool {
  private readonly idle: Worker[] = [];
  private readonly queue: Task[] = [];
  private readonly running = new Map<Worker, Task>();
  private readonly workers: Worker[] = [];
  private failure: Error | undefined;

  constructor(size: number) {
    const entry = workerThreadEntry("convert/encode-worker");
    for (let i = 0; i < size; i++) {
      const worker = new Worker(entry.code, { eval: entry.eval });
      worker.on("message", (reply: Reply) => this.finished(worker, reply.ok ? undefined : new Error(reply.error)));
      worker.on("error", (e) => this.fail(worker, e));
      worker.on("exit", (code) => this.fail(worker, new Error(`an encode worker stopped (exit code ${code})`)));
      this.workers.push(worker);
      this.idle.push(worker);
    }
  }

  run(job: EncodeJob): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const task = this.queue.shift()!;
      this.running.set(worker, task);
      worker.postMessage(task.job);
    }
  }

  private finished(worker: Worker, error: Error | undefined): void {
    const task = this.running.get(worker);
    this.running.delete(worker);
    this.idle.push(worker);
    if (error) task?.reject(error);
    else task?.resolve();
    this.dispatch();
  }

  /** A worker that died fails its job and every queued one; the conversion stops with that error. */
  private fail(worker: Worker, e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.running.get(worker)?.reject(e);
    this.running.delete(worker);
    for (const t of this.queue.splice(0)) t.reject(e);
  }
}
