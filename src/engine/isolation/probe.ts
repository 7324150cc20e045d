import { spawn } from "node:child_process";
import { entryModule } from "../../worker-thread-entry.js";
import { PROBE_CAUGHT_ERROR_EXIT, type ProbeJob, type ProbeReport } from "./probe-job.js";

/** How a probe ended. `crash`: the child died (abort, signal, hang); `error`: it caught an ordinary error. */
export type ProbeOutcome =
  | { kind: "ok"; ms: number }
  | { kind: "error"; ms: number; message: string }
  | { kind: "crash"; ms: number; reason: string; timedOut: boolean; signal: NodeJS.Signals | null };

/** stderr kept from a child: llama.cpp's message is at the end. */
const STDERR_KEEP = 64 * 1024;

/**
 * How to start the probe child: `node probe-child.js` from the compiled tree (also from the CLI
 * bundle, which inlines this module), or, when Shimmy runs from source under tsx (tests, `npm
 * run` scripts), `node --import tsx probe-child.ts`.
 */
export function probeChildCommand(): string[] {
  let entry: { path: string; tsx: boolean };
  try {
    entry = entryModule("engine/isolation/probe-child");
  } catch (e) {
    throw new Error(`${(e as Error).message}, or run with --no-isolation`);
  }
  return entry.tsx ? ["--import", import.meta.resolve("tsx"), entry.path] : [entry.path];
}

/** Source paths of the binary's build machine, cut so the message names llama.cpp's own file. */
const BUILD_PATH = /\S*?\/llama\.cpp\/(?=(?:src|ggml|common|tools)\/)/g;

/**
 * What llama.cpp says, most telling first: an abort ("file.cpp:123: GGML_ASSERT(…) failed", an
 * uncaught C++ exception), then its error log lines, then anything that failed.
 */
const MESSAGE_PATTERNS = [/^[\w./-]+\.(?:c|cc|cpp|h):\d+: |GGML_ASSERT|GGML_ABORT|terminate called/, /error loading|: error|\berror:/i, /failed|unsupported|fatal/i];

/** llama.cpp's own words from a child's stderr, or undefined when it said nothing. */
export function llamaMessage(stderr: string): string | undefined {
  const lines = stderr
    .split(/\r?\n/)
    .map((l) => l.replace(/^\[node-llama-cpp\]\s*/, "").replace(BUILD_PATH, "").trim())
    .filter((l) => l.length > 0 && !/^(at |Node\.js v|file:\/\/|\^+$)/.test(l));
  for (const pattern of MESSAGE_PATTERNS) {
    const at = lines.findLastIndex((l) => pattern.test(l));
    if (at < 0) continue;
    const next = lines[at + 1];
    // An uncaught exception's type is on one line, its message on the next.
    return next !== undefined && /^what\(\):/.test(next) ? `${lines[at]} ${next}` : lines[at];
  }
  return lines.at(-1);
}

/** Runs one probe child; never rejects. */
export function runProbe(job: ProbeJob, timeoutMs: number, signal?: AbortSignal): Promise<ProbeOutcome> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    let args: string[];
    try {
      args = probeChildCommand();
    } catch (e) {
      resolve({ kind: "error", ms: ms(), message: (e as Error).message });
      return;
    }
    // No gdb backtrace on abort: it is slow and buries the assertion.
    const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, GGML_NO_BACKTRACE: "1" } });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      if (stderr.length > 2 * STDERR_KEEP) stderr = stderr.slice(-STDERR_KEEP);
    });
    const kill = () => child.kill("SIGKILL");
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    signal?.addEventListener("abort", kill, { once: true });
    child.stdin.on("error", () => undefined);
    child.stdin.end(JSON.stringify(job));
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve({ kind: "error", ms: ms(), message: `could not start the model probe: ${e.message}` });
    });
    child.on("close", (code, sig) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", kill);
      const last = stdout.trim().split("\n").at(-1) ?? "";
      let report: ProbeReport | undefined;
      try {
        report = JSON.parse(last) as ProbeReport;
      } catch {
        report = undefined;
      }
      if (code === 0 && report?.ok) return resolve({ kind: "ok", ms: ms() });
      const llama = llamaMessage(stderr);
      if (code === PROBE_CAUGHT_ERROR_EXIT && report && !report.ok) {
        return resolve({ kind: "error", ms: ms(), message: llama && !report.error.includes(llama) ? `${report.error} (llama.cpp: ${llama})` : report.error });
      }
      if (signal?.aborted && !timedOut) return resolve({ kind: "error", ms: ms(), message: "the model probe was cancelled" });
      const how = timedOut
        ? `did not finish loading and decoding within ${Math.round(timeoutMs / 1000)} s`
        : sig
          ? `made llama.cpp end the process (${sig})`
          : `made the process exit with code ${code}`;
      resolve({ kind: "crash", ms: ms(), timedOut, signal: sig, reason: llama && !timedOut ? `${how}: ${llama}` : how });
    });
  });
}
