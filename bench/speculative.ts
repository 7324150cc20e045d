/**
 * Speculative decoding, side by side (docs/performance.md, "Speculative decoding"): single-stream
 * decode tok/s of Shimmy with prompt lookup on and off, llama-server without speculation and
 * llama-server with its own n-gram lookup, on two workloads:
 *   edit — the prompt holds a passage (text the model itself wrote) and then starts it over with one
 *          word changed, so the answer can repeat the passage;
 *   free — a short prompt of random words: nothing in it to copy.
 * on the shared stories260K and on the synthetic 100M model (random weights). With `--self-draft`,
 * also Shimmy with the model as its own draft model (`--draft-model`): every draft is accepted, and
 * each costs as much as the target's steps, so it measures what the draft-model machinery costs.
 *
 *   npm run build && node --import tsx bench/speculative.ts [--rounds 3] [--tokens 128] [--threads 1] [--models stories,100m] [--self-draft]
 *
 * Every server is up at once; each round runs every workload once per server, the order of the
 * servers rotated every round, and ratios are taken per round (paired) before the median, so slow
 * drift of a shared machine cancels out of them.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { syntheticLlamaGguf } from "../src/convert/synthetic-gguf.js";
import { median } from "../src/engine/rates.js";
import { promptText, streamCompletion } from "./scenarios.js";
import { REPO, SHIMMY_BIN, type ServerOptions, type ServerUnderTest, startLlamaServer, startShimmy } from "./servers.js";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "3" }, tokens: { type: "string", default: "128" }, threads: { type: "string", default: "1" }, models: { type: "string", default: "stories,100m" }, "self-draft": { type: "boolean", default: false } } });
const rounds = Number(values.rounds);
const tokens = Number(values.tokens);
const threads = Number(values.threads);
const log = (s: string): void => void process.stderr.write(`${s}\n`);

const llamaServer = process.env.LLAMA_SERVER ?? join(homedir(), ".cache", "shimmy", "baseline", "llama-server");
const stories = join(process.env.SHIMMY_TEST_MODELS ?? join(REPO, "..", "shared", "models"), "stories260K", "stories260K.gguf");

/** llama-server's own prompt lookup, set like Shimmy's: the last 3 tokens looked up, 8 drafted. */
const LLAMA_LOOKUP = ["--spec-type", "ngram-simple", "--spec-ngram-simple-size-n", "3", "--spec-ngram-simple-size-m", "8"];

/** llama-server with the model as its own draft model, drafting up to 8 tokens on `threads` threads as Shimmy does. */
const llamaSelfDraft = (path: string): string[] => ["--spec-type", "draft-simple", "-md", path, "--spec-draft-n-max", "8", "--spec-draft-n-min", "1", "-td", String(threads), "-tbd", String(threads)];

interface Model {
  label: string;
  path: string;
  /** The text the edit workload's passage is generated from. */
  seedText: string;
  /** The word of the passage's first sentence changed when the prompt starts it over. */
  change: [string, string];
}

async function models(): Promise<Model[]> {
  const all: Model[] = [];
  const wanted = values.models.split(",");
  if (wanted.includes("stories")) all.push({ label: "stories260K", path: stories, seedText: "Once upon a time, there was a dog named Spot.", change: ["Spot", "Max"] });
  if (wanted.includes("100m")) {
    const path = await syntheticLlamaGguf(join(process.env.SHIMMY_CACHE_DIR ?? join(homedir(), ".cache", "shimmy"), "bench"), "100m", "q8_0");
    all.push({ label: "synthetic 100M Q8_0", path, seedText: "ab cd ef gh ij kl", change: ["ef", "zz"] });
  }
  return all;
}

const modelName = (m: Model): string => basename(m.path, ".gguf").toLowerCase();

async function completionText(url: string, model: string, prompt: string, maxTokens: number): Promise<{ text: string; drafted?: number; accepted?: number }> {
  const res = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature: 0 }) });
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}: ${await res.text()}`);
  const body = (await res.json()) as { choices: { text: string }[]; timings?: { draft_n?: number; draft_n_accepted?: number } };
  return { text: body.choices[0]!.text, drafted: body.timings?.draft_n, accepted: body.timings?.draft_n_accepted };
}

interface Row {
  model: string;
  workload: string;
  server: string;
  round: number;
  decodeTps: number;
  /** The server process's CPU time (all threads) per generated token, ms: what a token costs, whatever else runs on the machine. */
  cpuMsPerToken: number;
}

/** User + system CPU time of a process so far, ms (Linux /proc; clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function measure(model: Model): Promise<{ rows: Row[]; acceptance: Record<string, string> }> {
  const o: ServerOptions = { model: model.path, threads, batchThreads: threads, parallel: 1, ctxPerSlot: 1024 };
  const starts: (() => Promise<ServerUnderTest>)[] = [
    () => startShimmy({ ...o, extraArgs: ["--speculative", "off"], label: " off" }),
    () => startShimmy({ ...o, extraArgs: ["--speculative", "auto"], label: " auto" }),
    () => startShimmy({ ...o, extraArgs: ["--speculative", "ngram"], label: " ngram" }),
  ];
  if (values["self-draft"]) starts.push(() => startShimmy({ ...o, extraArgs: ["--speculative", "draft", "--draft-model", model.path], label: " draft" }));
  if (existsSync(llamaServer)) {
    starts.push(() => startLlamaServer(llamaServer, o));
    starts.push(() => startLlamaServer(llamaServer, { ...o, extraArgs: LLAMA_LOOKUP, label: " ngram" }));
    if (values["self-draft"]) starts.push(() => startLlamaServer(llamaServer, { ...o, extraArgs: llamaSelfDraft(model.path), label: " draft" }));
  } else log(`no llama-server at ${llamaServer}: Shimmy only`);
  const servers: ServerUnderTest[] = [];
  try {
    for (const start of starts) servers.push(await start());
    const name = modelName(model);
    // The passage: what the model writes itself, greedily, after the seed text.
    const passage = model.seedText + (await completionText(servers[0]!.url, name, model.seedText, 150)).text;
    const edit = `${passage}\n\n${model.seedText.replace(model.change[0], model.change[1])}`;
    const workloads: [string, (round: number) => string][] = [
      ["edit", () => edit],
      ["free", (round) => promptText(12, 500 + round)],
    ];
    const acceptance: Record<string, string> = {};
    for (const s of servers) {
      for (const [workload, prompt] of workloads) {
        const r = await completionText(s.url, name, prompt(0), tokens);
        if (r.drafted !== undefined) acceptance[`${workload} ${s.name}`] = `${r.accepted}/${r.drafted}`;
      }
    }
    const rows: Row[] = [];
    for (let round = 1; round <= rounds; round++) {
      const order = servers.map((_, i) => (i + round) % servers.length);
      for (const [workload, prompt] of workloads) {
        for (const i of order) {
          const s = servers[i]!;
          const cpuBefore = cpuMs(s.pid);
          const runs = [await streamCompletion(s.url, name, prompt(round), tokens, true), await streamCompletion(s.url, name, prompt(round), tokens, true)];
          const cpuMsPerToken = (cpuMs(s.pid) - cpuBefore) / runs.reduce((n, r) => n + r.completionTokens, 0);
          const decodeTps = median(runs.map((r) => r.decodeTps));
          rows.push({ model: model.label, workload, server: s.name, round, decodeTps, cpuMsPerToken });
          log(`  ${model.label} round ${round} ${workload} ${s.name}: ${decodeTps.toFixed(1)} tok/s, ${cpuMsPerToken.toFixed(2)} CPU ms/token`);
        }
      }
    }
    return { rows, acceptance };
  } finally {
    for (const s of servers) await s.stop();
  }
}

/** The median over rounds of a/b, each round's two values measured back to back. */
function paired(rows: Row[], workload: string, a: string, b: string): string {
  const ratios: number[] = [];
  for (const r of rows.filter((x) => x.workload === workload && x.server === a)) {
    const other = rows.find((x) => x.workload === workload && x.server === b && x.round === r.round);
    if (other) ratios.push(r.decodeTps / other.decodeTps);
  }
  return ratios.length === 0 ? "–" : `${median(ratios).toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`;
}

const RATIOS: [string, string][] = [
  ["shimmy auto", "shimmy off"],
  ["shimmy ngram", "shimmy off"],
  ["shimmy draft", "shimmy off"],
  ["shimmy off", "llama-server"],
  ["shimmy auto", "llama-server"],
  ["shimmy ngram", "llama-server"],
  ["shimmy auto", "llama-server ngram"],
  ["shimmy ngram", "llama-server ngram"],
  ["llama-server ngram", "llama-server"],
  ["shimmy draft", "llama-server draft"],
  ["llama-server draft", "llama-server"],
];

async function main(): Promise<void> {
  if (!existsSync(SHIMMY_BIN)) throw new Error("run `npm run build` first (the benchmark runs dist/, as users do)");
  log(`${rounds} rounds, ${tokens} tokens, ${threads} thread(s); ${new Date().toISOString()}`);
  for (const model of await models()) {
    const { rows, acceptance } = await measure(model);
    console.log(`\n${model.label}, single stream, ${threads} thread(s), ${tokens} tokens, temperature 0: median decode tok/s over ${rounds} rounds (CPU ms per token)\n`);
    const servers = [...new Set(rows.map((r) => r.server))];
    console.log(`| workload | ${servers.join(" | ")} |\n| --- |${servers.map(() => " ---: |").join("")}`);
    for (const workload of ["edit", "free"]) {
      const of = (s: string) => rows.filter((r) => r.workload === workload && r.server === s);
      const cells = servers.map((s) => `${median(of(s).map((r) => r.decodeTps)).toFixed(1)} (${median(of(s).map((r) => r.cpuMsPerToken)).toFixed(2)})`);
      console.log(`| ${workload} | ${cells.join(" | ")} |`);
    }
    console.log(`\n| paired ratio (median of rounds, range) | ${["edit", "free"].join(" | ")} |\n| --- | ---: | ---: |`);
    for (const [a, b] of RATIOS.filter(([a, b]) => servers.includes(a) && servers.includes(b))) {
      console.log(`| ${a} / ${b} | ${["edit", "free"].map((w) => paired(rows, w, a, b)).join(" | ")} |`);
    }
    console.log(`\naccepted/drafted draft tokens in one ${tokens}-token run: ${JSON.stringify(acceptance)}`);
  }
}

main().catch((e: unknown) => {
  console.error(`bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
