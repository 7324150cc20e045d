/**
 * Shimmy's benchmark suite (`npm run bench`; not part of `npm test`). Generates a random-weight
 * llama GGUF, then measures Shimmy — and llama-server built from the same llama.cpp source when
 * available (LLAMA_SERVER=…, or `npm run bench:build-baseline`) — on the same model, threads,
 * slots and per-slot context, in the same run, and prints each side and the ratio.
 *
 *   npm run bench -- [--size 25m|100m|300m] [--type q8_0|f16|q4_0] [--threads 1,2,1/2,default]
 *                    [--parallel 8] [--rounds 3] [--native] [--quick] [--save] [--json]
 *                    [--scenarios short,long,prefix,concurrency] [--concurrency 1,4,8]
 *
 * Timing on a shared small machine drifts by ±15–30% over minutes, so for each thread setting
 * both servers are up together and every scenario alternates between them, `--rounds` times
 * (order swapped every round); each side's median at its best thread setting is compared, and
 * so is the median of the per-round ratios (paired) at llama-server's best setting. Settings
 * that ran one configuration (llama-server's `default` is `-t N -tb N` for its N) count as one.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir, cpus, totalmem } from "node:os";
import { basename, join } from "node:path";
import type { OutputType } from "../src/convert/quantize.js";
import { median } from "../src/engine/rates.js";
import { concurrent, type ConcurrencyResult, promptText, streamCompletion } from "./scenarios.js";
import { REPO, rssBytes, SHIMMY_BIN, type ServerOptions, startLlamaServer, startShimmy, type ServerUnderTest } from "./servers.js";
import { type SyntheticSize, syntheticLlamaGguf } from "../src/convert/synthetic-gguf.js";

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
/**
 * "2" = 2 threads for everything; "1/2" = 1 for one-token steps, 2 for batches (-t 1 -tb 2);
 * "default" = no thread flags: each server as it comes out of the box.
 */
interface ThreadSetting {
  label: string;
  threads?: number;
  batchThreads?: number;
}
const threadSettings: ThreadSetting[] = opt("threads", "1,2,1/2,default")
  .split(",")
  .map((label) => {
    if (label === "default") return { label };
    const [threads, batchThreads = threads] = label.split("/").map(Number) as [number, number?];
    if (!Number.isInteger(threads) || threads < 1 || !Number.isInteger(batchThreads) || batchThreads < 1) throw new Error(`--threads: "${label}" is not N or N/M`);
    return { label, threads, batchThreads };
  });
const parallel = Number(opt("parallel", "8"));
const rounds = Number(opt("rounds", quick ? "1" : "3"));
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: "${opt("rounds", "")}" is not a positive integer`);
const ctxPerSlot = 2048;
const SCENARIOS = ["short", "long", "prefix", "concurrency"] as const;
/** Which scenarios run (all by default): a change aimed at one metric is measured in more rounds in the same time. */
const selected = opt("scenarios", SCENARIOS.join(",")).split(",");
for (const name of selected) if (!(SCENARIOS as readonly string[]).includes(name)) throw new Error(`--scenarios: "${name}" is not one of ${SCENARIOS.join(", ")}`);
const concurrencyLevels = opt("concurrency", "1,4,8")
  .split(",")
  .map((level) => {
    const c = Number(level);
    if (!Number.isInteger(c) || c < 1) throw new Error(`--concurrency: "${level}" is not a positive integer`);
    return c;
  });
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
  /** The thread setting's label (--threads). */
  threads: string;
  /**
   * What the server ran with: "N/M", or the label where the server chooses at run time. Two
   * labels with one configuration (llama-server's `default` is `2` on 2 cores) are one setting.
   */
  config: string;
  round: number;
  coldStartMs: number;
  idleRssBytes: number | null;
  /** Absent when --scenarios left the scenario out. */
  shortPrompt?: SingleStream;
  longPrompt?: SingleStream;
  prefix?: { coldTtftMs: number; reusedTtftMs: number; speedup: number };
  concurrency?: ConcurrencyResult[];
}

/** One server's repetition of every scenario; a round of the run holds one per server. */
type RoundResult = Omit<SideResult, "server" | "threads" | "config" | "round" | "coldStartMs" | "idleRssBytes">;
type Scenario = (server: ServerUnderTest, round: number) => Promise<Partial<RoundResult>>;

const reps = quick ? 1 : 3;
const decodeTokens = quick ? 64 : 128;

interface SingleStream {
  ttftMs: number;
  decodeTps: number;
  /** The slowest of the runs: a median hides a stream that ran slow from start to end. */
  slowestDecodeTps: number;
}

/** Median TTFT and decode rate of `reps` runs; a new seed per round, so no run repeats a prompt. */
async function singleStream(server: ServerUnderTest, model: string, words: number, seed: number): Promise<SingleStream> {
  const runs = [];
  for (let r = 0; r < reps; r++) runs.push(await streamCompletion(server.url, model, promptText(words, seed + r * 7919), decodeTokens));
  const rates = runs.map((x) => x.decodeTps);
  return { ttftMs: median(runs.map((x) => x.ttftMs)), decodeTps: median(rates), slowestDecodeTps: Math.min(...rates) };
}

function scenarios(model: string): [string, Scenario][] {
  const all: [(typeof SCENARIOS)[number], string, Scenario][] = [
    ["short", "short prompt", async (s, round) => ({ shortPrompt: await singleStream(s, model, 12, 100 + round * 31) })],
    ["long", "long prompt", async (s, round) => ({ longPrompt: await singleStream(s, model, 400, 200 + round * 31) })],
    [
      "prefix",
      "prefix",
      async (s, round) => {
        // A ~1,000-token prefix, new each round: first time cold, then again with a new ending.
        const prefixText = promptText(quick ? 300 : 700, 300 + round);
        const cold = await streamCompletion(s.url, model, prefixText, 4);
        const reused = await streamCompletion(s.url, model, `${prefixText} zz`, 4);
        return { prefix: { coldTtftMs: cold.ttftMs, reusedTtftMs: reused.ttftMs, speedup: cold.ttftMs / reused.ttftMs } };
      },
    ],
    [
      "concurrency",
      "concurrency",
      async (s, round) => {
        const concurrency: ConcurrencyResult[] = [];
        for (const c of concurrencyLevels.filter((c) => c <= parallel)) concurrency.push(await concurrent(s.url, model, c, quick ? c : 2 * c, quick ? 32 : 64, 1000 * c + 100 * round));
        return { concurrency };
      },
    ],
  ];
  return all.filter(([name]) => selected.includes(name)).map(([, label, run]) => [label, run]);
}

function roundSummary(r: Partial<RoundResult>): string {
  if (r.shortPrompt) return `${r.shortPrompt.decodeTps.toFixed(1)} tok/s (slowest ${r.shortPrompt.slowestDecodeTps.toFixed(1)}), TTFT ${r.shortPrompt.ttftMs.toFixed(0)} ms`;
  if (r.longPrompt) return `TTFT ${r.longPrompt.ttftMs.toFixed(0)} ms`;
  if (r.prefix) return `cold ${r.prefix.coldTtftMs.toFixed(0)} ms, reused ${r.prefix.reusedTtftMs.toFixed(0)} ms (${r.prefix.speedup.toFixed(1)}×)`;
  return (r.concurrency ?? []).map((c) => `@${c.concurrency} ${c.aggregateTps.toFixed(1)} tok/s (p95 ${c.p95Ms.toFixed(0)} ms)`).join(", ");
}

/**
 * All sides of one thread setting, up at the same time (an idle server costs no CPU): each
 * scenario runs once per side in turn, order swapped every round, so slow drift of the machine
 * lands on both sides alike instead of on whichever server happened to run later.
 */
async function measureSetting(starts: (() => Promise<ServerUnderTest>)[], model: string, threads: string): Promise<SideResult[]> {
  const servers: ServerUnderTest[] = [];
  try {
    const idle: (number | null)[] = [];
    for (const start of starts) {
      const server = await start();
      servers.push(server);
      idle.push(rssBytes(server.pid));
      log(`  ${server.name} t=${threads}: up in ${server.coldStartMs.toFixed(0)} ms`);
    }
    for (const server of servers) await streamCompletion(server.url, model, promptText(8, 1), 8); // load + warm up
    const partial = servers.map(() => Array.from({ length: rounds }, (): Partial<RoundResult> => ({})));
    for (let round = 1; round <= rounds; round++) {
      const order = servers.map((_, i) => i);
      if (round % 2 === 0) order.reverse();
      for (const [name, run] of scenarios(model)) {
        for (const i of order) {
          const r = await run(servers[i]!, round);
          Object.assign(partial[i]![round - 1]!, r);
          log(`    ${servers[i]!.name} round ${round} ${name}: ${roundSummary(r)}`);
        }
      }
    }
    return servers.flatMap((server, i) =>
      partial[i]!.map((r, k) => ({ server: server.name, threads, config: server.threads ?? threads, round: k + 1, coldStartMs: server.coldStartMs, idleRssBytes: idle[i]!, ...(r as RoundResult) })),
    );
  } finally {
    for (const server of servers) await server.stop();
  }
}

/** Repeated values summed up: their median, and the lowest and highest (the spread it hides). */
interface Spread {
  value: number;
  min: number;
  max: number;
}

const spread = (values: number[]): Spread => ({ value: median(values), min: Math.min(...values), max: Math.max(...values) });

/** The median over the rounds at the side's best thread setting. */
interface SideBest extends Spread {
  /** The setting's label; labels that ran one configuration are joined ("2 = default"). */
  threads: string;
  /** Every label of that configuration. */
  labels: string[];
}

/**
 * One side's value of a metric: the median over rounds for each thread configuration, at the one
 * whose median is best. Medians, not best rounds: one lucky round must not decide a ratio. Labels
 * that ran the same configuration are pooled into one median: taking the better of two medians
 * of one configuration would pick the luckier draw (on 2 cores llama-server's `default` is its
 * `2`; the two differed by up to 9% in one run).
 */
function best(results: SideResult[], server: string, get: (r: SideResult) => number | undefined, better: "higher" | "lower"): SideBest | undefined {
  const byConfig = new Map<string, { labels: Set<string>; values: number[] }>();
  for (const r of results.filter((x) => x.server === server)) {
    const value = get(r);
    if (value === undefined) continue;
    const group = byConfig.get(r.config) ?? { labels: new Set<string>(), values: [] };
    group.labels.add(r.threads);
    group.values.push(value);
    byConfig.set(r.config, group);
  }
  let found: SideBest | undefined;
  for (const { labels, values } of byConfig.values()) {
    const s = spread(values);
    if (!found || (better === "higher" ? s.value > found.value : s.value < found.value)) found = { ...s, threads: [...labels].join(" = "), labels: [...labels] };
  }
  return found;
}

/**
 * Both sides at the same thread settings, round by round: the median of ours/theirs over the
 * rounds where both have a value (every label of `labels`, each round paired within its label).
 * The two sides of a round ran back to back, so drift of the machine between rounds (on this
 * 2-core VM, single-stream rounds of one server ranged 145–216 tok/s in one run) cancels out of
 * each ratio; a ratio of two medians keeps it.
 */
function pairedRatio(results: SideResult[], ours: string, labels: readonly string[], get: (r: SideResult) => number | undefined): Spread | undefined {
  const key = (r: SideResult): string => `${r.threads}#${r.round}`;
  const theirs = new Map(results.filter((r) => r.server === "llama-server" && labels.includes(r.threads)).map((r) => [key(r), get(r)]));
  const ratios: number[] = [];
  for (const r of results.filter((x) => x.server === ours && labels.includes(x.threads))) {
    const a = get(r);
    const b = theirs.get(key(r));
    if (a !== undefined && b !== undefined && b !== 0) ratios.push(a / b);
  }
  return ratios.length === 0 ? undefined : spread(ratios);
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
  for (const t of threadSettings) {
    const o: ServerOptions = { model, threads: t.threads, batchThreads: t.batchThreads, parallel, ctxPerSlot, native: has("native") };
    const starts = [() => startShimmy(o)];
    if (baseline) starts.push(() => startLlamaServer(baseline, o));
    results.push(...(await measureSetting(starts, modelName, t.label)));
  }
  const ourName = has("native") ? "shimmy (native)" : "shimmy";
  const rows: [string, (r: SideResult) => number | undefined, "higher" | "lower"][] = [
    ["single-stream decode tok/s", (r) => r.shortPrompt?.decodeTps, "higher"],
    [`slowest of ${reps} single streams, tok/s`, (r) => r.shortPrompt?.slowestDecodeTps, "higher"],
    ["TTFT short prompt, ms", (r) => r.shortPrompt?.ttftMs, "lower"],
    ["TTFT ~400-word prompt, ms", (r) => r.longPrompt?.ttftMs, "lower"],
    ["aggregate tok/s @1", (r) => r.concurrency?.find((c) => c.concurrency === 1)?.aggregateTps, "higher"],
    ["aggregate tok/s @4", (r) => r.concurrency?.find((c) => c.concurrency === 4)?.aggregateTps, "higher"],
    ["aggregate tok/s @8", (r) => r.concurrency?.find((c) => c.concurrency === 8)?.aggregateTps, "higher"],
    ["p95 latency @8, ms", (r) => r.concurrency?.find((c) => c.concurrency === 8)?.p95Ms, "lower"],
    ["reused-prefix TTFT speedup", (r) => r.prefix?.speedup, "higher"],
    ["cold start to /health 200, ms", (r) => r.coldStartMs, "lower"],
    ["idle RSS, MB", (r) => (r.idleRssBytes === null ? undefined : r.idleRssBytes / 2 ** 20), "lower"],
  ];
  const table = rows.map(([metric, get, better]) => {
    const ours = best(results, ourName, get, better);
    const base = best(results, "llama-server", get, better);
    // Paired at llama-server's best setting: the thread count the baseline is measured at.
    const paired = base && rounds > 1 ? pairedRatio(results, ourName, base.labels, get) : undefined;
    return { metric, better, shimmy: ours ?? null, "llama-server": base ?? null, ratio: ours && base && base.value !== 0 ? ours.value / base.value : null, paired: paired ? { ...paired, threads: base!.threads } : null };
  }).filter((row) => row.shimmy !== null || row["llama-server"] !== null);
  const summary = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? "?", memory_gb: Math.round(totalmem() / 2 ** 30), node: process.version },
    model: { size, type, file: model },
    settings: { threads: threadSettings.map((t) => t.label), rounds, parallel, ctx_per_slot: ctxPerSlot, quick, scenarios: selected, concurrency: concurrencyLevels },
    results,
    best: table,
  };
  if (json) console.log(JSON.stringify(summary, null, 2));
  else {
    const cell = (b: SideBest | null): string => (b === null ? "–" : `${b.value.toFixed(1)} (t=${b.threads}${rounds > 1 ? `, ${b.min.toFixed(1)}–${b.max.toFixed(1)}` : ""})`);
    console.log(`\n${size} ${type}, parallel ${parallel}, ${ctxPerSlot} ctx/slot; each side at its best of threads ${threadSettings.map((t) => t.label).join(", ")}: median of ${rounds} interleaved round(s), range in brackets (t=N/M: N for one-token steps, M for batches)\n`);
    console.log(`| metric | shimmy | ${baseline ? "llama-server | shimmy/llama-server | paired, same threads |" : ""}\n| --- | ---: | ${baseline ? "---: | ---: | ---: |" : ""}`);
    for (const row of table) {
      const r = row.ratio === null ? "–" : `${row.ratio.toFixed(2)}×`;
      const p = row.paired === null ? "–" : `${row.paired.value.toFixed(2)}× (t=${row.paired.threads}, ${row.paired.min.toFixed(2)}–${row.paired.max.toFixed(2)})`;
      console.log(`| ${row.metric} | ${cell(row.shimmy)} | ${baseline ? `${cell(row["llama-server"])} | ${r} | ${p} |` : ""}`);
    }
    if (baseline && rounds > 1) console.log("\npaired: the median over rounds of Shimmy's value / llama-server's value in the same round (run back to back), at llama-server's best thread setting; round-to-round drift of the machine cancels out of it.");
    console.log("\nllama-server loads its model before /health answers 200; Shimmy loads on the first request, so its cold start and idle RSS are without a model.");
  }
  if (has("save")) {
    const dir = join(REPO, "bench", "results");
    mkdirSync(dir, { recursive: true });
    const stem = join(dir, `${summary.date.slice(0, 10)}-${size}-${type}${has("native") ? "-native" : ""}`);
    // A second run the same day gets -2, -3…: an earlier saved run is never overwritten.
    let file = `${stem}.json`;
    for (let n = 2; existsSync(file); n++) file = `${stem}-${n}.json`;
    writeFileSync(file, JSON.stringify(summary, null, 2), { flag: "wx" });
    log(`saved ${file}`);
  }
}

main().catch((e: unknown) => {
  console.error(`bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
