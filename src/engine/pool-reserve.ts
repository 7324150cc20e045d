import { execFile } from "node:child_process";
import { constants, openSync, read, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

/** The pool size libuv derives from UV_THREADPOOL_SIZE: 4 when unset, else 1…1024 (0 or junk: 1). */
export function libuvPoolSize(value: string | undefined): number {
  if (value === undefined) return 4;
  return Math.min(1024, Math.max(1, Number.parseInt(value, 10) || 1));
}

/**
 * Keeps all but one of libuv's pool threads parked while models are loaded, and lends a parked
 * one to each model load.
 *
 * Why: node-llama-cpp runs every decode and sample as a job on libuv's pool. When consecutive
 * decodes run on different pool threads they are 1.5–3x slower (docs/configuration.md), so the
 * decodes need exactly one free pool thread; but with a pool of one, a model load (one long job)
 * holds every other model's decoding until it is done. Parked threads give both: decodes see one
 * thread, a load gets its own.
 *
 * How: a parked thread is a pool job blocked in read(2) on a FIFO that only this process holds;
 * writing one byte releases one. libuv joins its pool threads at process exit, so every parked
 * thread is released before exit (and when no model is loaded, since a pending read also keeps
 * Node's event loop alive). Not on Windows (no FIFOs): there the pool is left as it is.
 *
 * How many to park: UV_THREADPOOL_SIZE's value by libuv's rules, minus one. It can only be
 * smaller than the real pool (a preload such as `node --import tsx` starts the pool before the
 * `shimmy` command sets the variable; the real pool then has libuv's default of 4), never
 * larger, and parking too few is safe: decodes then see more than one thread, as before.
 */
export class PoolThreadReserve {
  private fd: number | undefined;
  /** Set once: the FIFO is opened (or fails to open) a single time per process. */
  private opening: Promise<void> | undefined;
  /** Parking reads issued and not yet returned. */
  private pending = 0;
  /** Release bytes written and not yet consumed by a read. */
  private owed = 0;
  private holders = 0;
  private borrowed = 0;

  constructor(
    private readonly spare: number,
    /** libuv's pool size this reserve was sized from (spare + 1, except where nothing is parked). */
    readonly poolSize = spare + 1,
  ) {}

  /** Threads parked now (or about to be: reads queued behind other jobs count). */
  get parked(): number {
    return this.pending - this.owed;
  }

  /** Resolves once the FIFO is open and the reads asked for so far are queued. */
  async ready(): Promise<void> {
    await this.opening;
  }

  /** Parks the spare threads until the matching drop() (while any model is loaded). */
  hold(): void {
    this.holders++;
    this.reconcile();
  }

  drop(): void {
    this.holders = Math.max(0, this.holders - 1);
    this.reconcile();
  }

  /** Frees one parked thread until the returned function is called (for a model load). */
  borrow(): () => void {
    this.borrowed++;
    this.reconcile();
    let returned = false;
    return () => {
      if (returned) return;
      returned = true;
      this.borrowed--;
      this.reconcile();
    };
  }

  private reconcile(): void {
    const wanted = this.holders > 0 ? Math.max(0, this.spare - this.borrowed) : 0;
    if (wanted > 0 && this.fd === undefined) {
      this.opening ??= this.open().then(() => this.reconcile());
      return;
    }
    if (this.fd === undefined) return;
    const fd = this.fd;
    for (let n = this.parked; n < wanted; n++) {
      this.pending++;
      // Any byte releases any parked read, so the counts alone say how many are parked.
      read(fd, Buffer.alloc(1), 0, 1, null, (err) => {
        this.pending--;
        // A failed read consumed no byte (and is not retried: it would likely fail again).
        if (!err) this.owed--;
        else process.emitWarning(`a parked libuv pool thread woke with an error (${err.message}); model loads may pause other models' decoding`);
      });
    }
    const excess = this.parked - wanted;
    if (excess > 0) {
      writeSync(fd, Buffer.alloc(excess));
      this.owed += excess;
    }
  }

  private async open(): Promise<void> {
    const path = join(tmpdir(), `shimmy-pool-${process.pid}-${Math.random().toString(36).slice(2)}`);
    try {
      await promisify(execFile)("mkfifo", ["-m", "600", path]);
      // Read-write so that opening does not wait for a writer (Linux and macOS allow it on a FIFO).
      this.fd = openSync(path, constants.O_RDWR);
      unlinkSync(path);
      process.once("exit", () => this.releaseAll());
    } catch (e) {
      process.emitWarning(`could not park libuv pool threads (${(e as Error).message}); model loads will pause other models' decoding`);
      try {
        unlinkSync(path);
      } catch {
        // never created
      }
    }
  }

  /** At exit: libuv would wait forever for a parked thread to finish its job. */
  private releaseAll(): void {
    if (this.fd === undefined || this.parked <= 0) return;
    writeSync(this.fd, Buffer.alloc(this.parked));
  }
}

let processReserve: PoolThreadReserve | undefined;

/** The one reserve for this process's libuv pool. */
export function poolThreadReserve(): PoolThreadReserve {
  if (!processReserve) {
    const size = libuvPoolSize(process.env.UV_THREADPOOL_SIZE);
    processReserve = new PoolThreadReserve(process.platform === "win32" ? 0 : size - 1, size);
  }
  return processReserve;
}
