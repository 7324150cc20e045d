import { type Command, InvalidArgumentError } from "commander";
import { statSync } from "node:fs";
import { join } from "node:path";
import { SYNTHETIC_SHAPES, type SyntheticSize, syntheticLlamaGguf } from "../convert/synthetic-gguf.js";
import { loadedCpuLibrary } from "../engine/cpu-library.js";
import { createModelPool } from "../engine/create-pool.js";
import type { LoadedModel } from "../engine/loaded-model.js";
import { median, tokenRates } from "../engine/rates.js";
import type { DoneEvent } from "../engine/types.js";
import { configFrom, includeTargetPath, type ModelSourceFlags, parsePositiveInt, withEngineOptions, withModelSources } from "./common.js";
import { bold, describeThreads, formatBytes, toJson } from "./output.js";

function parseSizes(value: string): SyntheticSize[] {
  const sizes = value.split(",").map((s) => s.trim().toLowerCase());
  const unknown = sizes.filter((s) => !(s in SYNTHETIC_SHAPES));
  if (unknown.length) throw new InvalidArgumentError(`unknown size ${unknown.join(", ")}; sizes: ${Object.keys(SYNTHETIC_SHAPES).join(", ")}`);
  return sizes as SyntheticSize[];
}

interface BenchFlags extends ModelSourceFlags {
  loadSweep?: boolean;
  sweepSizes: SyntheticSize[];
  promptTokens: number;
  genTokens: number;
  runs: number;
  concurrency: number;
  json?: boolean;
}

/** One generation; end-of-generation tokens are banned so exactly `maxTokens` are decoded. */
async function run(m: LoadedModel, text: string, maxTokens: number): Promise<DoneEvent> {
  const banned = new Map<number, number>();
  for (const t of [m.model.tokens.eos, m.model.tokens.eot]) if (t !== null) banned.set(t, -100);
  const prepared = await m.prepare({ model: m.spec.name, input: { kind: "text", text }, sampling: { temperature: 0, logitBias: banned }, maxTokens, stop: [] });
  return (await m.complete(prepared)).done;
}

/** A row of the load sweep: a model file's size and its load time (model and context; median of runs, warm page cache). */
interface LoadRow {
  model: string;
  path: string;
  size_bytes: number;
  load_ms: number;
  mb_per_second: number;
}

/** Loads each model `runs` times (unloading in between) and reports the median load time. */
async function loadSweep(flags: BenchFlags, target: string | undefined): Promise<LoadRow[]> {
  const sizes = flags.sweepSizes;
  const cacheDir = configFrom(flags).cacheDir;
  const files = [];
  for (const size of sizes) files.push(await syntheticLlamaGguf(join(cacheDir, "synthetic"), size, "q8_0"));
  const rows: LoadRow[] = [];
  for (const file of [...files, ...(target === undefined ? [] : [target])]) {
    const config = includeTargetPath(configFrom(flags, { parallel: 1 }), file);
    const pool = createModelPool(config);
    try {
      const name = pool.resolve(file).name;
      const times: number[] = [];
      let path = file;
      for (let r = 0; r < flags.runs; r++) {
        await pool.use(name, async (m) => {
          times.push(m.loadMs);
          path = m.ggufPath;
        });
        await pool.unload(name, "load sweep");
      }
      const size = statSync(path).size;
      const ms = median(times);
      rows.push({ model: name, path, size_bytes: size, load_ms: Math.round(ms * 10) / 10, mb_per_second: Math.round(size / 1e6 / (ms / 1000)) });
    } finally {
      await pool.close();
    }
  }
  return rows;
}

export function registerBench(program: Command): void {
  withEngineOptions(withModelSources(program.command("bench").description("measure one model: load time, prompt and decode tokens/s, time to first token; or load times across model sizes (--load-sweep)").argument("[model]", "model name or path")))
    .option("--load-sweep", "load synthetic models of each --sweep-sizes (made once with `shimmy synth`'s generator, Q8_0) and [model] if given, and print their load times")
    .option("--sweep-sizes <sizes>", `comma-separated synthetic sizes for --load-sweep (${Object.keys(SYNTHETIC_SHAPES).join(", ")})`, parseSizes, ["1m", "10m", "50m", "100m"] as SyntheticSize[])
    .option("--prompt-tokens <n>", "prompt length for the prompt-processing run", parsePositiveInt, 256)
    .option("--gen-tokens <n>", "tokens to decode", parsePositiveInt, 128)
    .option("--runs <n>", "repetitions (median reported)", parsePositiveInt, 3)
    .option("--concurrency <n>", "also decode this many streams at once (batched) and report their aggregate tokens/s", parsePositiveInt, 1)
    .option("--json", "machine-readable output")
    .action(async (target: string | undefined, flags: BenchFlags) => {
      if (flags.loadSweep) {
        try {
          const rows = await loadSweep(flags, target);
          if (flags.json) console.log(toJson({ load_sweep: rows, runs: flags.runs }));
          else {
            console.log(bold(`load time (model and context, median of ${flags.runs}, warm page cache)`));
            for (const r of rows) console.log(`  ${r.model.padEnd(40)} ${formatBytes(r.size_bytes).padStart(10)}  ${String(r.load_ms).padStart(8)} ms  ${String(r.mb_per_second).padStart(6)} MB/s`);
          }
        } catch (e) {
          console.error(`shimmy bench: ${(e as Error).message}`);
          process.exitCode = 1;
        }
        return;
      }
      if (target === undefined) {
        console.error("shimmy bench: name a model, or pass --load-sweep");
        process.exitCode = 1;
        return;
      }
      const config = includeTargetPath(configFrom(flags, { parallel: flags.concurrency }), target);
      const pool = createModelPool(config);
      try {
        const t0 = performance.now();
        await pool.use(target, async (m) => {
          const firstUseMs = performance.now() - t0;
          // A prompt of about the requested length, different each run so nothing is cached.
          const words = (seed: number) => Array.from({ length: flags.promptTokens }, (_, i) => ["once", "upon", "a", "time", "there", "was", "tom", "and", "sue"][(i * 7 + seed) % 9]).join(" ");
          const fit = async (seed: number): Promise<string> => {
            let text = words(seed);
            while ((await m.tokenizePrompt(text)).length > flags.promptTokens) text = text.slice(0, Math.floor(text.length * 0.9));
            return text;
          };
          const promptRuns: DoneEvent[] = [];
          const decodeRuns: DoneEvent[] = [];
          for (let r = 0; r < flags.runs; r++) {
            promptRuns.push(await run(m, await fit(r), 1));
            decodeRuns.push(await run(m, `${r} Once upon a time`, flags.genTokens));
          }
          // Aggregate decode rate of `concurrency` streams started together: all their generated
          // tokens over the wall time from the start to the last one done (prompts included).
          const aggregateRuns: number[] = [];
          for (let r = 0; flags.concurrency > 1 && r < flags.runs; r++) {
            const started = performance.now();
            const done = await Promise.all(Array.from({ length: flags.concurrency }, (_, i) => run(m, `${r} ${i} Once upon a time`, flags.genTokens)));
            aggregateRuns.push(done.reduce((n, d) => n + d.usage.completionTokens, 0) / ((performance.now() - started) / 1000));
          }
          const promptTps = median(promptRuns.map((d) => tokenRates(d.usage, d.timings).promptPerSecond ?? Number.NaN));
          const decodeTps = median(decodeRuns.map((d) => tokenRates(d.usage, d.timings).decodePerSecond ?? Number.NaN));
          const ttftMs = median(decodeRuns.map((d) => d.timings.queueMs + d.timings.promptMs));
          const result = {
            model: m.spec.name,
            build: config.nativeBuild ? "native" : "prebuilt",
            cpu_library: loadedCpuLibrary() ?? null,
            threads: config.threads,
            threads_alternative: config.threadsAlternative ?? null,
            batch_threads: config.batchThreads,
            load_ms: Math.round(m.loadMs),
            first_use_ms: Math.round(firstUseMs),
            prompt_tokens: promptRuns[0]!.usage.promptTokens,
            prompt_tokens_per_second: Math.round(promptTps * 10) / 10,
            generated_tokens: decodeRuns[0]!.usage.completionTokens,
            decode_tokens_per_second: Math.round(decodeTps * 10) / 10,
            ttft_ms: Math.round(ttftMs * 10) / 10,
            concurrency: flags.concurrency,
            concurrent_decode_tokens_per_second: aggregateRuns.length ? Math.round(median(aggregateRuns) * 10) / 10 : null,
            runs: flags.runs,
          };
          if (flags.json) console.log(toJson(result));
          else {
            console.log(bold(`${result.model}`) + ` (${result.build}${result.cpu_library ? ` ${result.cpu_library}` : ""}, ${describeThreads(config)}, median of ${result.runs})`);
            console.log(`  load            ${result.load_ms} ms (${result.first_use_ms} ms with runtime start-up)`);
            console.log(`  prompt          ${result.prompt_tokens} tokens at ${result.prompt_tokens_per_second} tok/s`);
            console.log(`  decode          ${result.generated_tokens} tokens at ${result.decode_tokens_per_second} tok/s`);
            console.log(`  time to first   ${result.ttft_ms} ms (short prompt)`);
            if (result.concurrent_decode_tokens_per_second !== null) console.log(`  ${flags.concurrency} at once       ${result.concurrent_decode_tokens_per_second} tok/s in all (${flags.genTokens} tokens each)`);
          }
        });
      } catch (e) {
        console.error(`shimmy bench: ${(e as Error).message}`);
        process.exitCode = 1;
      } finally {
        await pool.close();
      }
    });
}
