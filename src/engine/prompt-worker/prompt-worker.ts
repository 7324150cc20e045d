import { Worker } from "node:worker_threads";
import { workerThreadEntry } from "../../worker-thread-entry.js";
import type { LlamaRuntimeOptions } from "../llama.js";
import type { PromptJob, PromptReply, PromptWorkerData } from "./jobs.js";

type Pending = { resolve: (reply: PromptReply) => void; reject: (e: Error) => void };

/**
 * One worker thread that renders chat templates and tokenizes large inputs off the main event
 * loop (engine/prompt-worker/worker-entry.ts). Started on first use; it keeps the process alive
 * only while a job is outstanding. `close()` waits for running jobs: a thread ended during a native
 * tokenize call would abort the process.
 */
export class PromptWorker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Jobs answered so far (tests read it to see which inputs went to the worker). */
  completedJobs = 0;
  private closing: Promise<void> | undefined;

  constructor(private readonly runtime: LlamaRuntimeOptions) {}

  /** Renders a Jinja template (`source`) with `context` in the worker. */
  async render(source: string, context: Record<string, unknown>): Promise<string> {
    const reply = await this.send({ kind: "render", source, context });
    if ("error" in reply) throw new Error(reply.error);
    return (reply as { text: string }).text;
  }

  /** `llama_tokenize` of `text` by the vocabulary of the GGUF at `modelPath` (no BOS/EOS added). */
  async tokenize(modelPath: string, text: string, parseSpecial: boolean): Promise<number[]> {
    const reply = await this.send({ kind: "tokenize", modelPath, text, parseSpecial });
    if ("error" in reply) throw new Error(reply.error);
    const tokens = (reply as { tokens: Uint32Array }).tokens;
    // A plain loop: Array.from over a typed array of a few hundred thousand ids is many times slower.
    const ids = new Array<number>(tokens.length);
    for (let i = 0; i < tokens.length; i++) ids[i] = tokens[i]!;
    return ids;
  }

  /** Drops the worker's copy of a model's vocabulary (the model was unloaded). */
  forget(modelPath: string): void {
    this.worker?.postMessage({ kind: "forget", modelPath } satisfies PromptJob);
  }

  /** Lets outstanding jobs finish, then ends the thread (its models disposed first). */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    const worker = this.worker;
    if (!worker) return (this.closing = Promise.resolve());
    this.closing = new Promise<void>((resolve) => {
      worker.once("exit", () => resolve());
      worker.ref();
      worker.postMessage({ kind: "quit" } satisfies PromptJob);
    });
    return this.closing;
  }

  private send(job: { kind: "render"; source: string; context: Record<string, unknown> } | { kind: "tokenize"; modelPath: string; text: string; parseSpecial: boolean }): Promise<PromptReply> {
    if (this.closing) return Promise.reject(new Error("server is shutting down"));
    const worker = this.started();
    const id = this.nextId++;
    return new Promise<PromptReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ ...job, id } as PromptJob);
    });
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const entry = workerThreadEntry("engine/prompt-worker/worker-entry");
    const worker = new Worker(entry.code, { eval: entry.eval, workerData: { runtime: this.runtime } satisfies PromptWorkerData });
    worker.unref();
    worker.on("message", (reply: PromptReply) => {
      const job = this.pending.get(reply.id);
      if (!job) return;
      this.pending.delete(reply.id);
      this.completedJobs++;
      if (this.pending.size === 0) worker.unref();
      job.resolve(reply);
    });
    // A thread that died (it should not) fails its jobs; the next job starts a new one.
    const failAll = (e: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const job of this.pending.values()) job.reject(e);
      this.pending.clear();
    };
    worker.on("error", (e) => failAll(e));
    worker.on("exit", (code) => failAll(new Error(`the prompt worker stopped (exit code ${code})`)));
    this.worker = worker;
    return worker;
  }
}
