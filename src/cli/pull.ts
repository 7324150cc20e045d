import type { Command } from "commander";
import { isAbort } from "../pull/errors.js";
import { INCOMPLETE_SUFFIX } from "../pull/download.js";
import type { ProgressSink, PullProgress } from "../pull/progress.js";
import { type PullResult, planPull } from "../pull/pull.js";
import { formatPullRef } from "../pull/refs.js";
import { Registry } from "../registry/registry.js";
import { configFrom } from "./common.js";
import { formatBytes, green } from "./output.js";

interface PullFlags {
  registry?: string;
  json?: boolean;
}

/** A cli-progress bar per file on a terminal (bytes, speed, ETA); a line per step otherwise. */
async function terminalProgress(): Promise<{ sink: ProgressSink; stop: () => void }> {
  const { SingleBar } = await import("cli-progress");
  const bar = new SingleBar({ format: "{status} [{bar}] {percentage}% · {done} of {size} · {speed}/s · ETA {eta_formatted}", hideCursor: true, etaBuffer: 50 });
  let current: string | undefined;
  let started = 0;
  let startedAt = 0;
  const stop = (): void => {
    if (current !== undefined) bar.stop();
    current = undefined;
  };
  const sink = (e: PullProgress): void => {
    if (e.total === undefined || e.completed === undefined) {
      stop();
      console.error(e.status);
      return;
    }
    if (current !== e.status) {
      stop();
      current = e.status;
      started = e.completed;
      startedAt = performance.now();
      bar.start(e.total, e.completed, { status: e.status, done: formatBytes(e.completed), size: formatBytes(e.total), speed: "0 B" });
    }
    const seconds = (performance.now() - startedAt) / 1000;
    bar.update(e.completed, { done: formatBytes(e.completed), speed: formatBytes(seconds > 0 ? Math.round((e.completed - started) / seconds) : 0) });
  };
  return { sink, stop };
}

/** Without a terminal: each step once, and each file when it is complete. */
function lineProgress(): ProgressSink {
  let last = "";
  return (e) => {
    const line = e.total !== undefined ? (e.completed === e.total ? `${e.status}: ${formatBytes(e.total)}` : "") : e.status;
    if (line && line !== last) console.error(line);
    if (line) last = line;
  };
}

/** The name discovery gives the pulled model, so the user can use it at once. */
function pulledName(result: PullResult): string | undefined {
  const registry = new Registry(configFrom({}));
  return registry.all().find((m) => m.files[0] === result.modelPath)?.name;
}

export function registerPull(program: Command): void {
  program
    .command("pull")
    .description("download a model: hf:ORG/REPO[:QUANT|:FILE] into the Hugging Face cache, ollama:NAME[:TAG] (or an Ollama name) into Ollama's store")
    .argument("<ref>", "hf:ORG/REPO[:QUANT|:FILE], hf.co/ORG/REPO[:QUANT], ollama:NAME[:TAG] or an Ollama name")
    .option("--registry <url>", "Ollama registry base URL, for mirrors (default https://registry.ollama.ai; also SHIMMY_OLLAMA_REGISTRY)")
    .option("--json", "progress and result as JSON lines on stdout")
    .action(async (reference: string, flags: PullFlags) => {
      const config = configFrom({});
      const controller = new AbortController();
      const onSigint = (): void => controller.abort(new Error("interrupted"));
      process.once("SIGINT", onSigint);
      const terminal = !flags.json && process.stderr.isTTY === true ? await terminalProgress() : undefined;
      const sink: ProgressSink = flags.json ? (e) => console.log(JSON.stringify(e)) : terminal?.sink ?? lineProgress();
      try {
        const plan = await planPull(reference, { env: config.env, home: config.home, registry: flags.registry, signal: controller.signal });
        const result = await plan.run(sink);
        terminal?.stop();
        const name = pulledName(result);
        if (flags.json) console.log(JSON.stringify({ model: name ?? null, path: result.modelPath, files: result.files }));
        else console.log(name ? `${green("pulled")} ${formatPullRef(result.ref)} as ${name} (shimmy serve, then use model "${name}")` : `${green("pulled")} ${result.modelPath} (not among the models discovery finds here: is SHIMMY_NO_DEFAULT_LOCATIONS set?)`);
      } catch (e) {
        terminal?.stop();
        const interrupted = isAbort(e, controller.signal);
        const message = interrupted ? `interrupted; the partial download stays (*${INCOMPLETE_SUFFIX}), and the same command resumes it` : (e as Error).message;
        if (flags.json) console.log(JSON.stringify({ error: message }));
        console.error(`shimmy pull: ${message}`);
        process.exitCode = interrupted ? 130 : 1;
      } finally {
        process.removeListener("SIGINT", onSigint);
      }
    });
}
