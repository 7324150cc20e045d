/**
 * Time to first token of a long system prompt, cold vs restored from the prompt cache after a
 * restart (docs/performance.md, "Prompt cache"). Usage:
 *   node --import tsx bench/prompt-cache.ts [--tokens 4000] [--runs 3]
 * Each run: a server without the prompt cache (cold), then a server that saves the prefix on
 * close, then a fresh server on the same cache folder (restored). Each server loads the model
 * with a one-token request first, so the times compare prompt handling only.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadConfig } from "../src/config/config.js";
import { startServer } from "../src/server/server.js";
import { syntheticLlamaGguf } from "../src/convert/synthetic-gguf.js";

const { values } = parseArgs({ options: { tokens: { type: "string", default: "4000" }, runs: { type: "string", default: "3" } } });
const words = Number(values.tokens);
const model = await syntheticLlamaGguf(join(homedir(), ".cache", "shimmy", "synthetic"), "100m", "q8_0");

// Two-letter words are one token each in the synthetic vocabulary.
let seed = 7;
const letter = () => String.fromCharCode(97 + ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % 26));
const system = Array.from({ length: words }, () => letter() + letter()).join(" ");
const body = (user: string) => ({ model: "synthetic-llama-v2-100m-q8_0-s1", messages: [{ role: "system", content: system }, { role: "user", content: user }], max_tokens: 1, temperature: 0 });

async function ttft(cacheDir: string, promptCache: boolean): Promise<{ ms: number; promptTokens: number; cached: number }> {
  const config = loadConfig({ modelPaths: [model], scanDefaultLocations: false, port: 0, parallel: 1, ctxSize: 4096, promptCache, promptCacheDir: cacheDir, isolation: false }, { HOME: tmpdir() });
  const server = await startServer(config, "bench");
  type Usage = { usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } } };
  const post = async (b: unknown) => (await fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(b) })).json() as Promise<Usage>;
  try {
    await post({ ...body("warm"), messages: [{ role: "user", content: "ab" }] });
    const started = performance.now();
    const r = await post(body("cd ef"));
    return { ms: performance.now() - started, promptTokens: r.usage.prompt_tokens, cached: r.usage.prompt_tokens_details.cached_tokens };
  } finally {
    await server.close();
  }
}

for (let run = 0; run < Number(values.runs); run++) {
  const dir = mkdtempSync(join(tmpdir(), "shimmy-pc-bench-"));
  try {
    const cold = await ttft(dir, false);
    await ttft(dir, true); // evaluates the prompt and saves it on close
    const stateBytes = readdirSync(dir).filter((n) => n.endsWith(".state")).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    const restored = await ttft(dir, true);
    console.log(JSON.stringify({ promptTokens: cold.promptTokens, coldMs: Math.round(cold.ms), restoredMs: Math.round(restored.ms), restoredCached: restored.cached, stateBytes, speedup: Number((cold.ms / restored.ms).toFixed(1)) }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
