import { spawn } from "node:child_process";
import type { Command } from "commander";
import { chooseCpuVariant, chosenCpuVariant, installCpuVariant, prebuiltCpuLibraries, removeCpuVariants } from "../engine/cpu-variants.js";
import { gpuMayBeAvailable, nativeBuildExists } from "../engine/native-build.js";
import { median } from "../engine/rates.js";
import { type ModelSourceFlags, parseNonNegativeInt, parsePositiveInt, withModelSources } from "./common.js";
import { bold, dim, green, table, toJson } from "./output.js";

interface TuneFlags extends ModelSourceFlags {
  rounds: number;
  confirm: number;
  tokens: number;
  concurrency: number;
  margin: number;
  reset?: boolean;
  json?: boolean;
}

/** "default" is the prebuilt binary as shipped: llama.cpp picks the library. */
const DEFAULT = "default";

interface Measured {
  candidate: string;
  /** The library the run loaded (for "default", llama.cpp's pick). */
  library: string | undefined;
  /** Per run: the single-stream decode rate, or with --concurrency the geometric mean of it and the batched aggregate. */
  score: number[];
  single: number[];
  concurrent: number[];
  error?: string;
}

interface BenchRun {
  single: number;
  concurrent: number | undefined;
  library: string | undefined;
}

/** One `shimmy bench` run in a fresh process: a library cannot be swapped inside one. */
function benchOnce(target: string, candidate: string, flags: TuneFlags): Promise<BenchRun | { error: string }> {
  const args = [...process.execArgv, process.argv[1]!, "bench", target, "--json", "--runs", "1", "--gen-tokens", String(flags.tokens), "--prompt-tokens", "16", "--concurrency", String(flags.concurrency), "--gpu", "off", "--no-native", "--cpu-variant", candidate];
  for (const dir of flags.modelDirs ?? []) args.push("--model-dirs", dir);
  for (const path of flags.modelPath ?? []) args.push("--model-path", path);
  if (flags.defaultLocations === false) args.push("--no-default-locations");
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", (e) => resolve({ error: e.message }));
    child.on("close", (code, signal) => {
      if (signal) return resolve({ error: signal === "SIGILL" ? "this CPU lacks its instructions (SIGILL)" : `the run died (${signal})` });
      try {
        const result = JSON.parse(out) as { decode_tokens_per_second?: number; concurrent_decode_tokens_per_second?: number | null; cpu_library?: string | null };
        if (code === 0 && typeof result.decode_tokens_per_second === "number") return resolve({ single: result.decode_tokens_per_second, concurrent: result.concurrent_decode_tokens_per_second ?? undefined, library: result.cpu_library ?? undefined });
      } catch {
        // Reported below.
      }
      resolve({ error: (err.trim().split("\n").at(-1) ?? "").replace(/^shimmy bench: /, "") || `exit code ${code}` });
    });
  });
}

/** A progress bar on a terminal; one line per round on stderr otherwise (none with --json). */
async function progressReporter(total: number, json: boolean): Promise<{ tick: (label: string) => void; round: (n: number) => void; stop: () => void }> {
  if (json) return { tick: () => undefined, round: () => undefined, stop: () => undefined };
  if (!process.stderr.isTTY) return { tick: () => undefined, round: (n) => console.error(dim(`tune-cpu: round ${n} measured`)), stop: () => undefined };
  const { SingleBar } = await import("cli-progress");
  const bar = new SingleBar({ format: "measuring [{bar}] {value}/{total} runs · {label}", hideCursor: true, clearOnComplete: true });
  bar.start(total, 0, { label: "" });
  return { tick: (label) => bar.increment(1, { label }), round: () => undefined, stop: () => bar.stop() };
}

export function registerTuneCpu(program: Command): void {
  withModelSources(
    program
      .command("tune-cpu")
      .description("measure each CPU library of node-llama-cpp's prebuilt binary (haswell, zen4, …) on this machine with one model and use the fastest from then on, where no GPU may be present")
      .argument("[model]", "model name or path to measure with (a model you serve; larger than ~50 MB gives steadier numbers)"),
  )
    .option("--rounds <n>", "screening runs per library, rotating (the median counts)", parsePositiveInt, 1)
    .option("--confirm <n>", "runs each of the screening's winner and llama.cpp's pick, alternating: these decide", parsePositiveInt, 4)
    .option("--tokens <n>", "tokens decoded per stream and run", parsePositiveInt, 64)
    .option("--concurrency <n>", "streams decoded at once in each run's batched half (1: single stream only)", parsePositiveInt, 8)
    .option("--margin <percent>", "how much faster than llama.cpp's own pick a library must be to be chosen", parseNonNegativeInt, 3)
    .option("--reset", "forget the choice: llama.cpp picks the library again")
    .option("--json", "machine-readable result")
    .action(async (target: string | undefined, flags: TuneFlags) => {
      try {
        if (flags.reset) {
          const removed = removeCpuVariants();
          if (flags.json) console.log(toJson({ ok: true, removed }));
          else console.log(removed.length ? `${green("ok")} removed ${removed.join(", ")}; llama.cpp picks the CPU library again` : "nothing to reset: llama.cpp picks the CPU library");
          return;
        }
        if (target === undefined) throw new Error("name a model to measure with (or pass --reset)");
        const prebuilt = prebuiltCpuLibraries();
        if (!prebuilt) throw new Error("node-llama-cpp's prebuilt binary has one CPU library on this platform: nothing to choose");
        for (const v of prebuilt.variants) installCpuVariant(v);
        const candidates = [DEFAULT, ...prebuilt.variants];
        const measured = new Map<string, Measured>(candidates.map((c) => [c, { candidate: c, library: c === DEFAULT ? undefined : c, score: [], single: [], concurrent: [] }]));
        const progress = await progressReporter(candidates.length * flags.rounds + 2 * flags.confirm, flags.json === true);
        const measure = async (candidate: string): Promise<number | undefined> => {
          const m = measured.get(candidate)!;
          progress.tick(candidate);
          if (m.error !== undefined) return undefined;
          const r = await benchOnce(target, candidate, flags);
          if ("error" in r) {
            m.error = `did not run: ${r.error}`;
            return undefined;
          }
          // Single-stream and batched decoding weigh the same: the geometric mean of the two.
          const score = r.concurrent === undefined ? r.single : Math.sqrt(r.single * r.concurrent);
          m.score.push(score);
          m.single.push(r.single);
          if (r.concurrent !== undefined) m.concurrent.push(r.concurrent);
          m.library = r.library ?? m.library;
          return score;
        };
        const medianOf = (c: string) => (measured.get(c)!.score.length ? median(measured.get(c)!.score) : 0);
        const confirmation: Record<string, number[]> = {};
        let best: string | undefined;
        try {
          // Screening: every library, rotated each round so none always runs after the same one.
          for (let round = 0; round < flags.rounds; round++) {
            for (let i = 0; i < candidates.length; i++) await measure(candidates[(i + round) % candidates.length]!);
            progress.round(round + 1);
          }
          if (measured.get(DEFAULT)!.error !== undefined) throw new Error(`the prebuilt binary as shipped ${measured.get(DEFAULT)!.error}`);
          best = prebuilt.variants.filter((v) => medianOf(v) > 0).sort((a, b) => medianOf(b) - medianOf(a))[0];
          // Confirmation: the best of many medians is biased upward by luck, so the screening's
          // winner runs again against llama.cpp's pick, alternating, and only these runs decide.
          if (best !== undefined && best !== measured.get(DEFAULT)!.library) {
            confirmation[DEFAULT] = [];
            confirmation[best] = [];
            for (let i = 0; i < flags.confirm; i++) {
              for (const c of i % 2 ? [best, DEFAULT] : [DEFAULT, best]) {
                const tps = await measure(c);
                if (tps !== undefined) confirmation[c]!.push(tps);
              }
            }
          }
        } finally {
          progress.stop();
        }
        const def = measured.get(DEFAULT)!;
        const round1 = (values: number[]) => (values.length ? Math.round(median(values) * 10) / 10 : null);
        const rows = [...measured.values()].map((m) => ({ candidate: m.candidate, library: m.library ?? null, median_score: round1(m.score), scores: m.score.map((t) => Math.round(t * 10) / 10), single_tokens_per_second: round1(m.single), concurrent_tokens_per_second: round1(m.concurrent), error: m.error ?? null }));
        const confirmed = best !== undefined && confirmation[best]?.length && confirmation[DEFAULT]?.length ? { library: best, score: median(confirmation[best]), default_score: median(confirmation[DEFAULT]) } : undefined;
        // llama.cpp's pick keeps its place unless another library beats it by the margin.
        const chosen = confirmed && confirmed.score >= confirmed.default_score * (1 + flags.margin / 100) ? confirmed.library : undefined;
        const evidence = { model: target, rounds: flags.rounds, confirm_rounds: flags.confirm, tokens: flags.tokens, concurrency: flags.concurrency, margin_percent: flags.margin, default_library: def.library ?? null, measured: rows, confirmation: confirmed ?? null, measured_at: new Date().toISOString() };
        if (chosen) chooseCpuVariant(chosen, evidence);
        else removeCpuVariants();
        if (flags.json) {
          console.log(toJson({ ok: true, chosen: chosen ?? null, ...evidence }));
          return;
        }
        console.log(
          table([
            ["library", "score (median)", "single tok/s", `${flags.concurrency} at once tok/s`, "scores"],
            ...rows.map((r) => [r.candidate === DEFAULT ? `default (${r.library ?? "?"})` : r.candidate, r.median_score === null ? dim(r.error ?? "") : String(r.median_score), String(r.single_tokens_per_second ?? ""), String(r.concurrent_tokens_per_second ?? ""), r.scores.join(" ")]),
          ]),
        );
        if (flags.concurrency > 1) console.log(dim(`score: the geometric mean of single-stream and ${flags.concurrency}-at-once decode tokens/s, per run`));
        const versus = confirmed ? ` (${flags.confirm} runs each, alternating: ${confirmed.library} scored ${confirmed.score.toFixed(1)} vs ${confirmed.default_score.toFixed(1)})` : "";
        if (chosen) console.log(`${green("ok")} ${bold(chosen)} is faster than llama.cpp's pick (${def.library ?? "?"})${versus}; Shimmy loads it from now on where no GPU may be present (\`--cpu-variant default\` or \`shimmy tune-cpu --reset\` to undo)`);
        else console.log(`${green("ok")} llama.cpp's pick (${def.library ?? "?"}) stays: no library beat it by ${flags.margin}%${versus}`);
        // Where the choice does not apply by default, say so (config.ts cpuVariantFor).
        if (chosen && nativeBuildExists()) console.log(dim("  note: a `shimmy build-native` build exists and is used by default; this choice applies with --no-native"));
        else if (chosen && gpuMayBeAvailable()) console.log(dim("  note: a GPU may be present, so Shimmy uses the GPU-capable prebuilt binary by default; this choice applies with --gpu off"));
      } catch (e) {
        // The candidates measured go; an earlier choice stays.
        removeCpuVariants(chosenCpuVariant());
        if (flags.json) console.log(toJson({ ok: false, error: (e as Error).message }));
        else console.error(`shimmy tune-cpu: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}
