/**
 * Shimmy's benchmark suite (`npm run bench`; not part of `npm test`). Generates a random-weight
 * llama GGUF, then measures Shimmy — and llama-server built from the same llama.cpp source when
 * available (LLAMA_SERVER=…, or `npm run bench:build-baseline`) — on the same model, threads,
 * slots and per-slot context, in the same run, and prints each side and the ratio.
 *
 *   npm run bench -- [--size 25m|100m|300m] [--type q8_0|f16|q4_0] [--threads 1,2,1/2]
 *                    [--parallel 8] [--rounds 2] [--native] [--quick] [--save] [--json]
 *
 * Timing on a shared small machine drifts by ±15–30% over minutes, so each thread setting is
 * measured `--rounds` times with the two servers interleaved (order swapped every round), and
 * each side's best is compared.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir, cpus, totalmem } from "node:os";
import { basename, join } from "node:path";
import type { OutputType } from "../src/convert/quantize.js";
import { concurrent, type ConcurrencyResult, median, promptText, streamCompletion } from "./scenarios.js";
import { REPO, rssBytes, SHIMMY_BIN, type ServerOptions, startLlamaServer, startShimmy, type ServerUnderTest } from "./servers.js";
import { type SyntheticSize, syntheticLlamaGguf } from "./synthetic-gguf.js";

const argv = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i === -1 ? fallback : argv[i + 1]!;
};
const has = (name: string): boolean => argv.includes(`--${name}`);
const json = has("json");
const quick = has("quick");
const size = opt("size", "100m") as SyntheticSize;
const type = opt("type", "q8_0") as OutputType;
/** "2" = 2 threads for everything; "1/2" = 1 for one-token steps, 2 for batches (-t 1 -tb 2). */
interface ThreadSetting {
  label: string;
  threads: number;
  batchThreads: number;
}
const threadSettings: ThreadSetting[] = opt("threads", "1,2,1/2")
  .split(",")
  .map((label) => {
    const [threads, batchThreads = threads] = label.split("/").map(Number) as [number, number?];
    if (!Number.isInteger(threads) || threads < 1 || !Number.isInteger(batchThreads) || batchThreads < 1) throw new Error(`--threads: "${label}" is not N or N/M`);
    return { label, threads, batchThreads };
  });
const parallel = Number(opt("parallel", "8"));
const rounds = Number(opt("rounds", quick ? "1" : "2"));
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: "${opt("rounds", "")}" is not a positive integer`);
const ctxPerSlot = 2048;
const log = (s: string): void => void process.stderr.write(`${s}\n`);

function findBaseline(): string | undefined {
  if (process.env.LLAMA_SERVER) {
    if (!existsSync(process.env.LLAMA_SERVER)) throw new Error(`LLAMA_SERVER=${process.env.LLAMA_SERVER} does not exist`);
    return process.env.LLAMA_SERVER;
  }
  const built = join(process.env.SHIMMY_BASELINE_DIR ?? join(homedir(), ".cache", "shimmy", "baseline"), "llama-server");
  return existsSync(built) ? built : undefined;
}

interface SideResult {
  server: string;
  threads: string;
  round: number;
  coldStartMs: number;
  idleRssBytes: number | null;
  shortPrompt: { ttftMs: number; decodeTps: number };
  longPrompt: { ttftMs: number; decodeTps: number };
  prefix: { coldTtftMs: number; reusedTtftMs: number; speedup: number };
  concurrency: ConcurrencyResult[];
}

async function measure(start: () => Promise<ServerUnderTest>, model: string, threads: string, round: number): Promise<SideResult> {
  const server = await start();
  try {
    const idleRssBytes = rssBytes(server.pid);
    log(`  ${server.name} t=${threads} (round ${round}): up in ${server.coldStartMs.toFixed(0)} ms`);
    const reps = quick ? 1 : 3;
    const decode = quick ? 64 : 128;
    await streamCompletion(server.url, model, promptText(8, 1), 8); // load + warm up
    const single = async (words: number, seed: number) => {
      const runs = [];
      for (let r = 0; r < reps; r++) runs.push(await streamCompletion(server.url, model, promptText(words, seed + r * 7919), decode));
      return { ttftMs: median(runs.map((x) => x.ttftMs)), decodeTps: median(runs.map((x) => x.decodeTps)) };
    };
    const shortPrompt = await single(12, 100);
    const longPrompt = await single(400, 200);
    log(`    single stream: ${shortPrompt.decodeTps.toFixed(1)} tok/s, TTFT short ${shortPrompt.ttftMs.toFixed(0)} ms / long ${longPrompt.ttftMs.toFixed(0)} ms`);
    // A ~1,000-token prefix: first time cold, then again with a new ending.
    const prefixText = promptText(quick ? 300 : 700, 300);
    const cold = await streamCompletion(server.url, model, prefixText, 4);
    const reused = await streamCompletion(server.url, model, `${prefixText} zz`, 4);
    const prefix = { coldTtftMs: cold.ttftMs, reusedTtftMs: reused.ttftMs, speedup: cold.ttftMs / reused.ttftMs };
    log(`    prefix: cold ${cold.ttftMs.toFixed(0)} ms, reused ${reused.ttftMs.toFixed(0)} ms (${prefix.speedup.toFixed(1)}×)`);
    const concurrency: ConcurrencyResult[] = [];
    for (const c of [1, 4, 8].filter((c) => c <= parallel)) {
      const r = await concurrent(server.url, model, c, quick ? c : 2 * c, quick ? 32 : 64, 1000 * c);
      concurrency.push(r);
      log(`    concurrency ${c}: ${r.aggregateTps.toFixed(1)} tok/s aggregate, p50 ${r.p50Ms.toFixed(0)} ms, p95 ${r.p95Ms.toFixed(0)} ms`);
    }
    return { server: server.name, threads, round, coldStartMs: server.coldStartMs, idleRssBytes, shortPrompt, longPrompt, prefix, concurrency };
  } finally {
    await server.stop();
  }
}

/** One side's best value of a metric over the thread settings and rounds, and the setting that gave it. */
function best(results: SideResult[], server: string, get: (r: SideResult) => number | undefined, better: "higher" | "lower"): { value: number; threads: string } | undefined {
  let found: { value: number; threads: string } | undefined;
  for (const r of results.filter((x) => x.server === server)) {
    const value = get(r);
    if (value === undefined) continue;
    if (!found || (better === "higher" ? value > found.value : value < found.value)) found = { value, threads: r.threads };
  }
  return found;
}


async function main(): Promise<void> {
  if (!existsSync(SHIMMY_BIN)) throw new Error("run `npm run build` first (the benchmark runs dist/, as users do)");
  const cacheDir = join(process.env.SHIMMY_CACHE_DIR ?? join(homedir(), ".cache", "shimmy"), "bench");
  log(`model: synthetic llama ${size} ${type} (generated once into ${cacheDir})`);
  const model = await syntheticLlamaGguf(cacheDir, size, type);
  const modelName = basename(model, ".gguf").toLowerCase();
  log(`model name: ${modelName}`);
  const baseline = findBaseline();
  log(baseline ? `baseline: ${baseline}` : "baseline: none (set LLAMA_SERVER or run `npm run bench:build-baseline`); our numbers only");
  const results: SideResult[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const t of threadSettings) {
      const o: ServerOptions = { model, threads: t.threads, batchThreads: t.batchThreads, parallel, ctxPerSlot, native: has("native") };
      const sides = [() => measure(() => startShimmy(o), modelName, t.label, round)];
      if (baseline) sides.push(() => measure(() => startLlamaServer(baseline, o), modelName, t.label, round));
      if (round % 2 === 0) sides.reverse();
      for (const side of sides) results.push(await side());
    }
  }
  const ourName = has("native") ? "shimmy (native)" : "shimmy";
  const rows: [string, (r: SideResult) => number | undefined, "higher" | "lower"][] = [
    ["single-stream decode tok/s", (r) => r.shortPrompt.decodeTps, "higher"],
    ["TTFT short prompt, ms", (r) => r.shortPrompt.ttftMs, "lower"],
    ["TTFT ~400-word prompt, ms", (r) => r.longPrompt.ttftMs, "lower"],
    ["aggregate tok/s @1", (r) => r.concurrency.find((c) => c.concurrency === 1)?.aggregateTps, "higher"],
    ["aggregate tok/s @4", (r) => r.concurrency.find((c) => c.concurrency === 4)?.aggregateTps, "higher"],
    ["aggregate tok/s @8", (r) => r.concurrency.find((c) => c.concurrency === 8)?.aggregateTps, "higher"],
    ["p95 latency @8, ms", (r) => r.concurrency.find((c) => c.concurrency === 8)?.p95Ms, "lower"],
    ["reused-prefix TTFT speedup", (r) => r.prefix.speedup, "higher"],
    ["cold start to /health 200, ms", (r) => r.coldStartMs, "lower"],
    ["idle RSS, MB", (r) => (r.idleRssBytes === null ? undefined : r.idleRssBytes / 2 ** 20), "lower"],
  ];
  const table = rows.map(([metric, get, better]) => {
    const ours = best(results, ourName, get, better);
    const base = best(results, "llama-server", get, better);
    return { metric, better, shimmy: ours ?? null, "llama-server": base ?? null, ratio: ours && base && base.value !== 0 ? ours.value / base.value : null };
  });
  const summary = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? "?", memory_gb: Math.round(totalmem() / 2 ** 30), node: process.version },
    model: { size, type, file: model },
    settings: { threads: threadSettings.map((t) => t.label), rounds, parallel, ctx_per_slot: ctxPerSlot, quick },
    results,
    best: table,
  };
  if (json) console.log(JSON.stringify(summary, null, 2));
  else {
    const cell = (b: { value: number; threads: string } | null): string => (b === null ? "–" : `${b.value.toFixed(1)} (t=${b.threads})`);
    console.log(`\n${size} ${type}, parallel ${parallel}, ${ctxPerSlot} ctx/slot; each side's best over threads ${threadSettings.map((t) => t.label).join(", ")} × ${rounds} interleaved round(s) (t=N/M: N for one-token steps, M for batches)\n`);
    console.log(`| metric | shimmy | ${baseline ? "llama-server | shimmy/llama-server |" : ""}\n| --- | ---: | ${baseline ? "---: | ---: |" : ""}`);
    for (const row of table) {
      const r = row.ratio === null ? "–" : `${row.ratio.toFixed(2)}×`;
      console.log(`| ${row.metric} | ${cell(row.shimmy)} | ${baseline ? `${cell(row["llama-server"])} | ${r} |` : ""}`);
    }
    console.log("\nllama-server loads its model before /health answers 200; Shimmy loads on the first request, so its cold start and idle RSS are without a model.");
  }
  if (has("save")) {
    const dir = join(REPO, "bench", "results");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${summary.date.slice(0, 10)}-${size}-${type}${has("native") ? "-native" : ""}.json`);
    writeFileSync(file, JSON.stringify(summary, null, 2));
    log(`saved ${file}`);
  }
}

main().catch((e: unknown) => {
  console.error(`bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
