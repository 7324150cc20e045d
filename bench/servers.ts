import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";

export interface ServerUnderTest {
  name: string;
  url: string;
  pid: number;
  /** ms from spawn to the first /health 200. */
  coldStartMs: number;
  /**
   * The thread counts the server runs with, as "N/M" (one-token steps / batches), where it says;
   * undefined when they are its own choice at run time (Shimmy's `auto`).
   */
  threads?: string;
  stop(): Promise<void>;
}

export const REPO = resolve(import.meta.dirname, "..");
/** The built `shimmy` command (npm run build), the same launcher users run. */
export const SHIMMY_BIN = join(REPO, "dist", "cli", "shimmy.cjs");

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
    s.on("error", rej);
  });
}

async function waitHealthy(url: string, child: ChildProcess, started: number, timeoutMs: number): Promise<number> {
  let spawnError: Error | undefined;
  child.once("error", (e) => (spawnError = e));
  for (;;) {
    if (spawnError) throw spawnError;
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      const r = await fetch(`${url}/health`);
      if (r.status === 200) return performance.now() - started;
    } catch {
      // not listening yet
    }
    if (performance.now() - started > timeoutMs) throw new Error(`no /health 200 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((res) => {
      if (child.exitCode !== null) return res();
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      child.once("exit", () => {
        clearTimeout(timer);
        res();
      });
      child.kill("SIGTERM");
    });
}

/** Resident memory of a process, from /proc (Linux). */
export function rssBytes(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export interface ServerOptions {
  model: string;
  /** Threads for one-token steps (Shimmy --threads, llama-server -t); unset = the server's default. */
  threads?: number;
  /** Threads for prompts and batched streams (Shimmy --threads-batch, llama-server -tb); unset = the server's default. */
  batchThreads?: number;
  parallel: number;
  ctxPerSlot: number;
  native?: boolean;
  /** More command-line arguments for this server (speculative decoding settings). */
  extraArgs?: string[];
  /** Appended to the server's name, to tell two settings of one server apart. */
  label?: string;
}

/** "N/M" for explicit counts (a missing -tb follows -t in both servers); undefined when unset. */
function explicitThreads(o: ServerOptions): string | undefined {
  return o.threads === undefined ? undefined : `${o.threads}/${o.batchThreads ?? o.threads}`;
}

function threadArgs(o: ServerOptions, one: string, batch: string): string[] {
  return [...(o.threads === undefined ? [] : [one, String(o.threads)]), ...(o.batchThreads === undefined ? [] : [batch, String(o.batchThreads)])];
}

/** Shimmy from dist/ (run `npm run build` first), as a user runs it. */
export async function startShimmy(o: ServerOptions): Promise<ServerUnderTest> {
  const port = await freePort();
  const args = [SHIMMY_BIN, "serve", "--model-path", o.model, "--no-default-locations", "--port", String(port), ...threadArgs(o, "--threads", "--threads-batch"), "--parallel", String(o.parallel), "--ctx-size", String(o.ctxPerSlot), "--gpu", "off", "--json"];
  // Explicit either way: Shimmy uses a native build by default once one exists.
  args.push(o.native ? "--native" : "--no-native", ...(o.extraArgs ?? []));
  const started = performance.now();
  const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, HOME: process.env.HOME } });
  const url = `http://127.0.0.1:${port}`;
  const coldStartMs = await waitHealthy(url, child, started, 30_000);
  // Without flags Shimmy runs `auto` (one-token steps move between counts): no fixed setting.
  return { name: `${o.native ? "shimmy (native)" : "shimmy"}${o.label ?? ""}`, url, pid: child.pid!, coldStartMs, threads: explicitThreads(o), stop: stopper(child) };
}

/** llama-server with the same model file, threads, slots and per-slot context. */
export async function startLlamaServer(binary: string, o: ServerOptions): Promise<ServerUnderTest> {
  const port = await freePort();
  const args = ["-m", o.model, "--host", "127.0.0.1", "--port", String(port), ...threadArgs(o, "-t", "-tb"), "-np", String(o.parallel), "-c", String(o.ctxPerSlot * o.parallel), "--no-webui", ...(o.extraArgs ?? [])];
  const started = performance.now();
  const child = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] });
  // Its log names the thread count it picked ("llama threadpool init, n_threads = N"); without
  // -tb, batches get the same count (llama.cpp common: postprocess_cpu_params).
  let picked: string | undefined;
  let log = "";
  child.stderr!.setEncoding("utf8").on("data", (text: string) => {
    if (picked !== undefined) return;
    log = (log + text).slice(-4096);
    const m = /threadpool init, n_threads = (\d+)/.exec(log);
    if (m) picked = m[1];
  });
  const url = `http://127.0.0.1:${port}`;
  const coldStartMs = await waitHealthy(url, child, started, 120_000);
  const threads = explicitThreads(o.threads === undefined && picked !== undefined ? { ...o, threads: Number(picked) } : o);
  return { name: `llama-server${o.label ?? ""}`, url, pid: child.pid!, coldStartMs, threads, stop: stopper(child) };
}
