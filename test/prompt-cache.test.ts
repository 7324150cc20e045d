import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type ConfigOverrides, loadConfig, parseByteSize } from "../src/config/config.js";
import type { RunningServer } from "../src/server/server.js";
import { tempDir } from "./helpers/paths.js";
import { postJson, startTestServer } from "./helpers/server.js";

const CHAT = "stories260k-chat";
const MIN_TOKENS = 64;

/** A system prompt of ~200 tokens in the stories vocabulary, as agents resend on every turn. */
const SYSTEM = [
  "You are a kind storyteller for small children. Every story has a little girl named Lily and her dog Max.",
  "They live in a small house near a big park with a pond, tall trees and a red slide.",
  "Always say what the weather is like, what Lily wants, and how she feels at the end of the day.",
  "Use short sentences and simple words. Never be scary. End with a happy lesson about sharing.",
].join(" ");

const chatBody = (user: string, extra: Record<string, unknown> = {}) => ({
  model: CHAT,
  messages: [
    { role: "system", content: SYSTEM },
    { role: "user", content: user },
  ],
  max_tokens: 24,
  temperature: 0,
  logprobs: true,
  ...extra,
});

interface Answer {
  text: string;
  /** Each sampled token's piece, in order. */
  tokens: string[];
  promptTokens: number;
  cachedTokens: number;
  cacheN: number;
}

async function ask(server: RunningServer, body: unknown): Promise<Answer> {
  const r = await postJson(`${server.url}/v1/chat/completions`, body);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const choice = r.json.choices[0];
  return {
    text: choice.message.content,
    tokens: choice.logprobs.content.map((t: { token: string }) => t.token),
    promptTokens: r.json.usage.prompt_tokens,
    cachedTokens: r.json.usage.prompt_tokens_details.cached_tokens,
    cacheN: r.json.timings.cache_n,
  };
}

const dirs: { cleanup(): void }[] = [];
function cacheDir(): string {
  const d = tempDir("shimmy-prompt-cache-");
  dirs.push(d);
  return d.path;
}
after(() => {
  for (const d of dirs) d.cleanup();
});

function serve(dir: string, overrides: ConfigOverrides = {}): Promise<RunningServer> {
  return startTestServer({ parallel: 1, promptCache: true, promptCacheDir: dir, promptCacheMinTokens: MIN_TOKENS, ...overrides });
}

/** Runs `fn` on a fresh server and closes it (which saves the slots' long prefixes). */
async function withServer<T>(dir: string, fn: (s: RunningServer) => Promise<T>, overrides: ConfigOverrides = {}): Promise<T> {
  const server = await serve(dir, overrides);
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}

/** The saved entries in a cache folder: id → sidecar. */
function entries(dir: string): Map<string, { tokens: number[]; bytes: number }> {
  const out = new Map<string, { tokens: number[]; bytes: number }>();
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith(".json")) continue;
    const id = name.slice(0, -5);
    assert.ok(existsSync(join(dir, `${id}.state`)), `${id} has its state file`);
    out.set(id, JSON.parse(readFileSync(join(dir, name), "utf8")));
  }
  return out;
}

/** The answer without any prompt cache: what a restored state must reproduce exactly. */
let cold: Answer | undefined;
async function coldAnswer(): Promise<Answer> {
  cold ??= await withServer(cacheDir(), (s) => ask(s, chatBody("Tell me a story.")), { promptCache: false });
  return cold;
}

describe("prompt cache: long prefixes survive restarts and unloads", () => {
  it("a restarted server restores the saved prefix and answers token for token as a cold run", async () => {
    const reference = await coldAnswer();
    assert.equal(reference.cachedTokens, 0);
    assert.ok(reference.promptTokens > MIN_TOKENS + 20, `the system prompt is long enough (${reference.promptTokens} tokens)`);
    const dir = cacheDir();
    const first = await withServer(dir, (s) => ask(s, chatBody("Tell me a story.")));
    assert.equal(first.cachedTokens, 0, "nothing saved yet");
    assert.deepEqual(first.tokens, reference.tokens);
    assert.equal(entries(dir).size, 1, "closing the server saved the slot");
    const again = await withServer(dir, (s) => ask(s, chatBody("Tell me a story.")));
    assert.equal(again.cachedTokens, again.promptTokens - 1, "all of the prompt but its last token came from disk");
    assert.equal(again.cacheN, again.cachedTokens, "llama-server's timings.cache_n agrees");
    assert.deepEqual(again.tokens, reference.tokens, "token for token the cold run's output");
    assert.equal(again.text, reference.text);
  });

  it("a different user message after the same system prompt restores the shared prefix only", async () => {
    const dir = cacheDir();
    await withServer(dir, (s) => ask(s, chatBody("Tell me a story.")));
    const other = await withServer(dir, (s) => ask(s, chatBody("What does Max like to eat?")));
    const reference = await withServer(cacheDir(), (s) => ask(s, chatBody("What does Max like to eat?")), { promptCache: false });
    assert.ok(other.cachedTokens >= MIN_TOKENS && other.cachedTokens < other.promptTokens - 1, `a prefix was restored (${other.cachedTokens} of ${other.promptTokens})`);
    assert.deepEqual(other.tokens, reference.tokens);
  });

  it("unloading the model (keep_alive 0) saves its slot; the next request restores it", async () => {
    const reference = await coldAnswer();
    const dir = cacheDir();
    await withServer(dir, async (s) => {
      const first = await ask(s, chatBody("Tell me a story."));
      assert.equal(first.cachedTokens, 0);
      const unload = await postJson(`${s.url}/api/generate`, { model: CHAT, keep_alive: 0 });
      assert.equal(unload.status, 200);
      assert.equal(entries(dir).size, 1, "the unload saved the slot");
      const again = await ask(s, chatBody("Tell me a story."));
      assert.equal(again.cachedTokens, again.promptTokens - 1);
      assert.deepEqual(again.tokens, reference.tokens);
    });
  });
});

/** Story openings of ~100 tokens each that share under MIN_TOKENS tokens with one another. */
const STORY = {
  a: "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her big red ball. One day, she saw a small bird in a tall tree. The bird was sad because it could not fly. Lily wanted to help",
  b: "Tom was a happy boy who lived in a big house by the sea. Every morning he went to the beach with his mom to look for shells. One sunny day, he found a shiny box in the sand. He opened the box and saw",
  c: "The little cat sat on the mat and looked at the sky. It was a cold and windy day, and the cat wanted to go inside. Her friend the dog came to the door and said hello. They played with a ball of yarn until",
};

async function complete(server: RunningServer, prompt: string, model = CHAT): Promise<Answer> {
  const r = await postJson(`${server.url}/v1/completions`, { model, prompt, max_tokens: 16, temperature: 0 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return { text: r.json.choices[0].text, tokens: [], promptTokens: r.json.usage.prompt_tokens, cachedTokens: r.json.usage.prompt_tokens_details.cached_tokens, cacheN: r.json.timings.cache_n };
}

describe("prompt cache: what an entry may be restored into", () => {
  it("never another model's or another context size's; the same settings restore it", async () => {
    const dir = cacheDir();
    const ctx = { ctxSize: 512 };
    const first = await withServer(dir, (s) => complete(s, STORY.a), ctx);
    assert.ok(first.promptTokens > MIN_TOKENS + 1, `${first.promptTokens} prompt tokens`);
    assert.equal(entries(dir).size, 1);
    // stories260k has the same tokenizer and tensors: only the file tells them apart.
    const otherModel = await withServer(dir, (s) => complete(s, STORY.a, "stories260k"), ctx);
    assert.equal(otherModel.promptTokens, first.promptTokens, "the same prompt tokens");
    assert.equal(otherModel.cachedTokens, 0);
    const otherSize = await withServer(dir, (s) => complete(s, STORY.a), { ctxSize: 384 });
    assert.equal(otherSize.cachedTokens, 0);
    const same = await withServer(dir, (s) => complete(s, STORY.a), ctx);
    assert.equal(same.cachedTokens, same.promptTokens - 1, "the entry is there, and restored under its own settings");
    assert.equal(same.text, first.text);
  });
});

describe("prompt cache: damaged entries", () => {
  const damages: [string, (statePath: string) => void][] = [
    ["a truncated state file", (p) => truncateSync(p, Math.floor(statSync(p).size / 2))],
    ["a state file of garbage", (p) => writeFileSync(p, Buffer.alloc(statSync(p).size, 0x5a))],
    // Size and token header as the sidecar says: only llama.cpp can tell (its magic number).
    ["a state file llama.cpp refuses", (p) => {
      const bytes = readFileSync(p);
      bytes.writeUInt32LE(0, 0);
      writeFileSync(p, bytes);
    }],
    ["a sidecar that is not JSON", (p) => writeFileSync(p.replace(/\.state$/, ".json"), "{\"format\":")],
  ];
  for (const [what, damage] of damages) {
    it(`${what} is ignored and removed; the request is answered as without it`, async () => {
      const dir = cacheDir();
      const reference = await withServer(dir, (s) => complete(s, STORY.b));
      const [id] = [...entries(dir).keys()];
      damage(join(dir, `${id}.state`));
      await withServer(dir, async (s) => {
        const again = await complete(s, STORY.b);
        assert.equal(again.cachedTokens, 0);
        assert.equal(again.text, reference.text);
        assert.ok(!existsSync(join(dir, `${id}.state`)) && !existsSync(join(dir, `${id}.json`)), "the damaged entry is gone");
        const metrics = await (await fetch(`${s.url}/metrics`)).text();
        assert.match(metrics, /^shimmy_prompt_cache_discarded_total 1$/m);
        assert.match(metrics, /^shimmy_prompt_cache_hits_total 0$/m);
      });
      assert.equal(entries(dir).size, 1, "saved afresh when the server stopped");
    });
  }
});

describe("prompt cache: size bound", () => {
  it("evicts the least recently used entry when a save goes over --prompt-cache-size", async () => {
    const dir = cacheDir();
    // A, then B on the one slot: B displaces A's prefix (saved then), and closing saves B.
    await withServer(dir, async (s) => {
      await complete(s, STORY.a);
      await complete(s, STORY.b);
    });
    const saved = entries(dir);
    assert.equal(saved.size, 2);
    // A was saved first (when B displaced it): its state file is the older.
    const [idA, idB] = [...saved.keys()].sort((x, y) => statSync(join(dir, `${x}.state`)).mtimeMs - statSync(join(dir, `${y}.state`)).mtimeMs) as [string, string];
    const [sizeA, sizeB] = [saved.get(idA)!.bytes, saved.get(idB)!.bytes];
    // Room for two entries of this size, not three.
    const bound = sizeA + sizeB + Math.floor(Math.min(sizeA, sizeB) / 2);
    await withServer(
      dir,
      async (s) => {
        const a = await complete(s, STORY.a);
        assert.equal(a.cachedTokens, a.promptTokens - 1, "A restored: now the most recently used");
        const c = await complete(s, STORY.c);
        assert.ok(c.cachedTokens < MIN_TOKENS, "C shares little with A (BOS)");
        const metrics = await (await fetch(`${s.url}/metrics`)).text();
        assert.match(metrics, /^shimmy_prompt_cache_hits_total 1$/m);
        assert.match(metrics, /^shimmy_prompt_cache_misses_total 1$/m);
      },
      { promptCacheMaxBytes: bound },
    );
    const kept = entries(dir);
    assert.equal(kept.size, 2, "C was saved and one entry evicted");
    assert.ok(kept.has(idA), "A, restored during this run, is kept");
    assert.ok(!kept.has(idB), "B, the least recently used, is evicted");
    assert.ok(!existsSync(join(dir, `${idB}.state`)));
  });
});

describe("prompt cache settings", () => {
  it("defaults, environment variables and sizes with units", () => {
    const d = loadConfig({}, { HOME: "/home/u" });
    assert.equal(d.promptCache, true);
    assert.equal(d.promptCacheDir, "/home/u/.cache/shimmy/prompt-cache");
    assert.equal(d.promptCacheMaxBytes, 8 * 2 ** 30);
    assert.equal(d.promptCacheMinTokens, 1024);
    const e = loadConfig({}, { HOME: "/home/u", SHIMMY_CACHE_DIR: "/c", SHIMMY_PROMPT_CACHE: "0", SHIMMY_PROMPT_CACHE_SIZE: "512M", SHIMMY_PROMPT_CACHE_MIN_TOKENS: "256" });
    assert.deepEqual([e.promptCache, e.promptCacheDir, e.promptCacheMaxBytes, e.promptCacheMinTokens], [false, "/c/prompt-cache", 512 * 2 ** 20, 256]);
    assert.equal(loadConfig({}, { HOME: "/home/u", SHIMMY_PROMPT_CACHE_DIR: "/pc" }).promptCacheDir, "/pc");
    assert.deepEqual(["100", "4k", "1.5G", "2GiB", "3 MB"].map(parseByteSize), [100, 4096, 1.5 * 2 ** 30, 2 * 2 ** 30, 3 * 2 ** 20]);
    for (const bad of ["", "-1", "8X", "G", "1e9"]) assert.throws(() => parseByteSize(bad), /is not a size/, bad);
    assert.throws(() => loadConfig({}, { HOME: "/h", SHIMMY_PROMPT_CACHE_SIZE: "lots" }), /SHIMMY_PROMPT_CACHE_SIZE=lots/);
  });
});
