import assert from "node:assert/strict";
import type { Token } from "node-llama-cpp";
import { after, before, describe, it } from "node:test";
import { type ConfigOverrides, loadConfig } from "../src/config/config.js";
import { createModelPool } from "../src/engine/create-pool.js";
import type { LoadedModel } from "../src/engine/loaded-model.js";
import type { ModelPool } from "../src/engine/model-pool.js";
import { DraftBudget } from "../src/engine/speculative/draft-budget.js";
import { DraftPayoff } from "../src/engine/speculative/payoff.js";
import { join } from "node:path";
import { promptLookupDraft } from "../src/engine/speculative/prompt-lookup.js";
import type { DoneEvent, GenerationRequest } from "../src/engine/types.js";
import { type RunningServer, startServer } from "../src/server/server.js";
import { GgufValueType } from "../src/formats/gguf.js";
import type { GgufWriteTensor, GgufWriteValue } from "../src/formats/gguf-writer.js";
import { u32 } from "./helpers/gguf-fixtures.js";
import { rewriteGguf } from "./helpers/gguf-rewrite.js";
import { STORIES_CHAT_GGUF, STORIES_GGUF, tempDir } from "./helpers/paths.js";
import { postJson, startTestServer } from "./helpers/server.js";

const MODEL = "stories260k";

async function loadStories(overrides: ConfigOverrides): Promise<{ pool: ModelPool; model: LoadedModel }> {
  const config = loadConfig({ modelPaths: [STORIES_GGUF], scanDefaultLocations: false, threads: 1, gpu: false, parallel: 4, promptCache: false, isolation: false, ...overrides }, { HOME: "/nonexistent" });
  const pool = createModelPool(config);
  // Held for the whole file: the pool must not unload it between tests.
  return { pool, model: (await pool.acquire(MODEL)).model };
}

let plain: { pool: ModelPool; model: LoadedModel };
let speculative: { pool: ModelPool; model: LoadedModel };

before(async () => {
  plain = await loadStories({ speculative: "off" });
  speculative = await loadStories({ speculative: "ngram" });
});
after(async () => {
  await plain.pool.close();
  await speculative.pool.close();
});

type Request = Omit<GenerationRequest, "model" | "input" | "sampling" | "stop"> & { prompt: string; temperature?: number; seed?: number; stop?: string[] };

async function run(model: LoadedModel, r: Request): Promise<{ text: string; done: DoneEvent }> {
  const { prompt, temperature = 0, seed, stop = [], ...rest } = r;
  const request: GenerationRequest = { model: MODEL, input: { kind: "text", text: prompt }, sampling: { temperature, seed }, stop, ...rest };
  return model.complete(await model.prepare(request));
}

/** What must not change with speculation: the tokens, the text, how it ended, and which alternatives the log-probabilities name. */
const outcome = ({ text, done }: { text: string; done: DoneEvent }) => ({
  text,
  ids: done.tokenIds,
  finish: done.finishReason,
  usage: done.usage,
  alternatives: done.output.logprobs?.map((l) => l.top.map((t) => t.id)),
});

/** The outcome less the cached prompt tokens, which depend on what ran on the slot before (another test's requests). */
const generated = (r: { text: string; done: DoneEvent }) => ({ ...outcome(r), usage: { ...outcome(r).usage, cachedTokens: undefined } });

/**
 * Log-probabilities agree to float rounding: logits computed for several tokens in one batch
 * (a draft, or other streams batched alongside without speculation) are summed in another order
 * than a one-token step's; two streams batched together differ from one alone by up to ~1e-3.
 */
function assertLogprobsClose(got: DoneEvent, expected: DoneEvent): void {
  const values = (d: DoneEvent) => (d.output.logprobs ?? []).flatMap((l) => [l.logprob, ...l.top.map((t) => t.logprob)]);
  const [a, b] = [values(got), values(expected)];
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-3, `log-probability ${i}: ${a[i]} vs ${b[i]}`);
}

/** Draft tokens checked and accepted over some generations (zero when speculation was off). */
function drafts(dones: DoneEvent[]): { drafted: number; accepted: number } {
  return dones.reduce((sum, d) => ({ drafted: sum.drafted + (d.timings.drafted ?? 0), accepted: sum.accepted + (d.timings.accepted ?? 0) }), { drafted: 0, accepted: 0 });
}

const PROMPTS = [
  "Once upon a time",
  "Lily and Tom went to the park. Lily and Tom went to the park. Lily and",
  // An "edit": the answer repeats a passage of the prompt.
  'The bird said "I want to fly to the big tree with my mom." Then the bird said "I want to fly to the',
  "One day, a little girl named Sue",
  "The cat",
];

describe("speculative decoding (prompt lookup) on stories260K", () => {
  it("greedy output is token for token the same as without it, and drafts were accepted", async () => {
    const dones: DoneEvent[] = [];
    for (const prompt of PROMPTS) {
      const off = await run(plain.model, { prompt, maxTokens: 160 });
      const on = await run(speculative.model, { prompt, maxTokens: 160 });
      assert.deepEqual(outcome(on), outcome(off), prompt);
      assert.equal(off.done.timings.drafted, undefined, "no speculation, no draft counts");
      dones.push(on.done);
    }
    const { drafted, accepted } = drafts(dones);
    assert.ok(accepted > 20 && drafted >= accepted, `drafted ${drafted}, accepted ${accepted}`);
  });

  it("the same with requests batched across slots at once", async () => {
    const expected = await Promise.all(PROMPTS.slice(0, 4).map((prompt) => run(plain.model, { prompt, maxTokens: 120 })));
    const got = await Promise.all(PROMPTS.slice(0, 4).map((prompt) => run(speculative.model, { prompt, maxTokens: 120 })));
    assert.deepEqual(got.map(outcome), expected.map(outcome));
    assert.ok(drafts(got.map((g) => g.done)).accepted > 0);
  });

  it("the same with a JSON grammar, with log-probabilities, with a stop string and with a token limit", async () => {
    const cases: Request[] = [
      { prompt: "Lily said", constraint: { kind: "json_schema", schema: { type: "object", properties: { name: { type: "string" }, friends: { type: "array", items: { type: "string" } } }, required: ["name", "friends"] } }, maxTokens: 120 },
      { prompt: PROMPTS[1]!, logprobs: { top: 3 }, maxTokens: 60 },
      { prompt: PROMPTS[1]!, stop: ["play with"], maxTokens: 100 },
      { prompt: PROMPTS[1]!, maxTokens: 7 },
    ];
    const dones: DoneEvent[] = [];
    for (const c of cases) {
      const off = await run(plain.model, c);
      const on = await run(speculative.model, c);
      assert.deepEqual(outcome(on), outcome(off), JSON.stringify(c));
      assertLogprobsClose(on.done, off.done);
      dones.push(on.done);
    }
    assert.equal(dones[2]!.finishReason, "stop");
    assert.equal(dones[2]!.stopSequence, "play with");
    assert.deepEqual([dones[3]!.finishReason, dones[3]!.usage.completionTokens], ["length", 7]);
    assert.match(dones[0]!.output.content, /^\{ "name" : "[^"]*"\s*, "friends" : \[ "/, "the schema's grammar held");
    assert.equal(dones[1]!.output.logprobs?.length, dones[1]!.usage.completionTokens);
    for (const d of dones.slice(0, 3)) assert.ok((d.timings.accepted ?? 0) > 0, "each case accepted drafts");
  });

  it("at temperature 1 the sampled tokens follow the model's distribution as without it", async () => {
    // The job's sampler draws once per emitted token, as one token per step does, so each seed
    // gives the same text; over the seeds, the tokens' frequencies at each position must match.
    const seeds = Array.from({ length: 40 }, (_, i) => 1000 + i);
    const positions = 12;
    const sample = async (model: LoadedModel) => {
      const out: number[][] = [];
      const dones: DoneEvent[] = [];
      for (const seed of seeds) {
        const { done } = await run(model, { prompt: PROMPTS[1]!, temperature: 1, seed, maxTokens: positions });
        out.push(done.tokenIds);
        dones.push(done);
      }
      return { out, dones };
    };
    const off = await sample(plain.model);
    const on = await sample(speculative.model);
    assert.ok(drafts(on.dones).accepted > 0, "drafts were accepted at temperature 1");
    // Total variation distance between the two token histograms, per position.
    for (let p = 0; p < positions; p++) {
      const counts = new Map<number, number>();
      for (const ids of off.out) if (ids[p] !== undefined) counts.set(ids[p]!, (counts.get(ids[p]!) ?? 0) + 1);
      for (const ids of on.out) if (ids[p] !== undefined) counts.set(ids[p]!, (counts.get(ids[p]!) ?? 0) - 1);
      const distance = [...counts.values()].reduce((sum, c) => sum + Math.abs(c), 0) / (2 * seeds.length);
      assert.ok(distance <= 0.1, `position ${p}: total variation ${distance}`);
    }
    assert.deepEqual(on.out, off.out, "seed for seed the same tokens");
  });
});

describe("speculative decoding with a draft model (stories260K drafting for itself)", () => {
  let drafted: { pool: ModelPool; model: LoadedModel };
  before(async () => {
    // The chat GGUF is the same model and vocabulary in another file: found by path, not discovered.
    drafted = await loadStories({ speculative: "draft", draftModel: STORIES_CHAT_GGUF });
  });
  after(async () => {
    await drafted.pool.close();
  });

  it("greedy output is token for token the same as without it, and a self-draft is nearly all accepted", async () => {
    const dones: DoneEvent[] = [];
    for (const prompt of PROMPTS) {
      const off = await run(plain.model, { prompt, maxTokens: 120 });
      const on = await run(drafted.model, { prompt, maxTokens: 120 });
      assert.deepEqual(generated(on), generated(off), prompt);
      dones.push(on.done);
    }
    const { drafted: n, accepted } = drafts(dones);
    assert.ok(accepted > 0.9 * n && accepted > 200, `drafted ${n}, accepted ${accepted}`);
  });

  it("the same with two requests at once, and again on slots whose draft sequences hold earlier text", async () => {
    for (const pair of [PROMPTS.slice(0, 2), PROMPTS.slice(2, 4), PROMPTS.slice(0, 2)]) {
      const expected = await Promise.all(pair.map((prompt) => run(plain.model, { prompt, maxTokens: 100 })));
      const got = await Promise.all(pair.map((prompt) => run(drafted.model, { prompt, maxTokens: 100 })));
      assert.deepEqual(got.map(generated), expected.map(generated));
      for (const g of got) assert.ok((g.done.timings.accepted ?? 0) > 0, "each request accepted drafts");
    }
  });

  it("the same with a JSON grammar and at temperature 1 seed for seed (the target's sampler decides)", async () => {
    const cases: Request[] = [
      { prompt: "Lily said", constraint: { kind: "json_schema", schema: { type: "object", properties: { name: { type: "string" } }, required: ["name"] } }, maxTokens: 60 },
      ...[1, 2, 3].map((seed) => ({ prompt: PROMPTS[1]!, temperature: 1, seed, maxTokens: 40 })),
    ];
    for (const c of cases) {
      const off = await run(plain.model, c);
      const on = await run(drafted.model, c);
      assert.deepEqual(generated(on), generated(off), JSON.stringify(c));
    }
  });

  it("a discovered model's name works as the draft model too", async () => {
    // The chat GGUF holds the same weights and vocabulary; a model never drafts for itself.
    const byName = await loadStories({ speculative: "draft", draftModel: "stories260k-chat", modelPaths: [STORIES_GGUF, STORIES_CHAT_GGUF] });
    try {
      const off = await run(plain.model, { prompt: PROMPTS[0]!, maxTokens: 60 });
      const on = await run(byName.model, { prompt: PROMPTS[0]!, maxTokens: 60 });
      assert.deepEqual(on.done.tokenIds, off.done.tokenIds);
      assert.ok((on.done.timings.accepted ?? 0) > 0);
      assert.equal(byName.model.draftModelName, "stories260k-chat");
      const itself = await byName.pool.acquire("stories260k-chat");
      try {
        assert.equal(itself.model.draftModelName, undefined, "the draft model does not draft for itself");
      } finally {
        itself.release();
      }
    } finally {
      await byName.pool.close();
    }
  });

  it("a draft model with another vocabulary is refused by name, saying how it differs; the model serves without drafts", async () => {
    const tmp = tempDir();
    try {
      const renamed = join(tmp.path, "renamed-token.gguf");
      await rewriteGguf(STORIES_GGUF, renamed, (metadata) => {
        const tokens = metadata.get("tokenizer.ggml.tokens")!;
        assert.ok(tokens.type === GgufValueType.ARRAY);
        tokens.value[300] = "<not the target's>";
      });
      const otherBos = join(tmp.path, "other-bos.gguf");
      await rewriteGguf(STORIES_GGUF, otherBos, (metadata) => void metadata.set("tokenizer.ggml.bos_token_id", u32(2)));
      const expectations: [string, RegExp][] = [
        [renamed, /draft model ".*renamed-token\.gguf" cannot draft for "stories260k": their vocabularies differ \(token 300 is "<not the target's>" against the target's ".*"\)/],
        [otherBos, /draft model ".*other-bos\.gguf" cannot draft for "stories260k": their vocabularies differ \(BOS is 2 against the target's 1\)/],
      ];
      for (const [draftModel, message] of expectations) {
        const config = loadConfig({ modelPaths: [STORIES_GGUF], scanDefaultLocations: false, threads: 1, gpu: false, parallel: 1, promptCache: false, isolation: false, draftModel }, { HOME: "/nonexistent" });
        const notes: string[] = [];
        const pool = createModelPool(config, undefined, { onEvent: (e) => void (e.type === "load" && e.note !== undefined && notes.push(e.note)) });
        try {
          const lease = await pool.acquire(MODEL);
          try {
            assert.equal(lease.model.draftModelName, undefined);
            assert.ok(lease.model.draftRefusal !== undefined && message.test(lease.model.draftRefusal), lease.model.draftRefusal);
            assert.equal(notes.length, 1);
            assert.match(notes[0]!, message);
            const done = await run(lease.model, { prompt: PROMPTS[0]!, maxTokens: 20 });
            assert.ok(done.done.tokenIds.length > 0);
            assert.equal(done.done.timings.drafted ?? 0, 0);
          } finally {
            lease.release();
          }
        } finally {
          await pool.close();
        }
      }
    } finally {
      tmp.cleanup();
    }
  });
});

describe("--draft-model names nothing", () => {
  it("is refused when the server starts, naming it, not at each model's load", async () => {
    const config = loadConfig({ modelPaths: [STORIES_GGUF], scanDefaultLocations: false, threads: 1, gpu: false, parallel: 1, promptCache: false, isolation: false, draftModel: "no-such-model" }, { HOME: "/nonexistent" });
    await assert.rejects(startServer(config, "test"), /draft model "no-such-model" is neither a discovered model nor a GGUF file/);
  });
});

describe("--draft-auto", () => {
  /** stories260K cut to its first `layers` blocks: a smaller model of the same family and vocabulary. */
  const truncated = (layers: number, rename?: string) => (metadata: Map<string, GgufWriteValue>, tensors: GgufWriteTensor[]) => {
    metadata.set("llama.block_count", u32(layers));
    const tokens = metadata.get("tokenizer.ggml.tokens")!;
    if (rename !== undefined && tokens.type === GgufValueType.ARRAY) tokens.value[300] = rename;
    return tensors.filter((t) => !/^blk\.(\d+)\./.test(t.name) || Number(/^blk\.(\d+)\./.exec(t.name)![1]) < layers);
  };

  it("pairs a model with the smallest discovered model of its architecture and vocabulary, at most half its size", async () => {
    const tmp = tempDir();
    try {
      const oneLayer = join(tmp.path, "stories-1layer.gguf");
      const otherVocabulary = join(tmp.path, "a-1layer-other-vocab.gguf");
      await rewriteGguf(STORIES_GGUF, oneLayer, truncated(1));
      await rewriteGguf(STORIES_GGUF, otherVocabulary, truncated(1, "<not the target's>"));
      const config = loadConfig({ modelPaths: [STORIES_GGUF, oneLayer, otherVocabulary], scanDefaultLocations: false, threads: 1, gpu: false, parallel: 2, promptCache: false, isolation: false, draftAuto: true }, { HOME: "/nonexistent" });
      assert.equal(config.speculative, "draft", "--draft-auto alone means draft");
      const pool = createModelPool(config);
      try {
        const target = (await pool.acquire(MODEL)).model;
        assert.equal(target.draftModelName, "stories-1layer", "the one of the same size with another vocabulary (first by name) is passed over");
        const dones: DoneEvent[] = [];
        for (const prompt of PROMPTS.slice(0, 3)) {
          const off = await run(plain.model, { prompt, maxTokens: 80 });
          const on = await run(target, { prompt, maxTokens: 80 });
          assert.deepEqual(on.done.tokenIds, off.done.tokenIds, prompt);
          dones.push(on.done);
        }
        assert.ok(drafts(dones).drafted > 0, "the paired model drafted");
        // Nothing discovered is half a 1-layer model's size (the embeddings dominate).
        assert.equal((await pool.acquire("stories-1layer")).model.draftModelName, undefined);
      } finally {
        await pool.close();
      }
    } finally {
      tmp.cleanup();
    }
  });
});

describe("prompt-lookup drafts", () => {
  const t = (ids: number[]): Token[] => ids as Token[];

  it("continue the latest earlier occurrence of the longest matching suffix", () => {
    // Suffix [2,3,4] (history + last) occurs at 1..3 and 6..8; the later one is followed by 9, 1.
    assert.deepEqual(promptLookupDraft(t([0, 2, 3, 4, 5, 7, 2, 3, 4, 9, 1, 2, 3]), 4 as Token, 3), [9, 1, 2]);
    // No 4- or 3-gram match; the bigram [8,5] is followed by 6.
    assert.deepEqual(promptLookupDraft(t([8, 5, 6, 1, 8]), 5 as Token, 4), [6, 1, 8, 5]);
    assert.deepEqual(promptLookupDraft(t([1, 2, 3]), 4 as Token, 4), [], "nothing to copy");
    assert.deepEqual(promptLookupDraft(t([7]), 7 as Token, 4), [], "one token matches no bigram");
  });

  it("adapt their length: longer while accepted, paused after drafts rejected outright", () => {
    const budget = new DraftBudget({ min: 2, max: 8 });
    assert.equal(budget.next(100), 8);
    budget.record(8, 3);
    assert.equal(budget.next(100), 4, "just past the accepted run");
    assert.equal(budget.next(3), 3, "bounded by the room left");
    budget.record(3, 3);
    assert.equal(budget.next(100), 8, "doubled after a whole draft was accepted");
    budget.record(8, 0);
    assert.deepEqual([budget.next(100), budget.next(100), budget.next(100)], [0, 0, 2], "paused 2 steps, then the shortest draft");
    budget.record(2, 0);
    assert.deepEqual(Array.from({ length: 5 }, () => budget.next(100)), [0, 0, 0, 0, 2], "then 4");
    assert.equal(new DraftBudget({ min: 2, max: 8 }).next(1), 0, "no draft shorter than the minimum");
  });
});

describe("draft payoff (--speculative auto)", () => {
  it("pauses drafting while steps with drafts cost more per token than steps without, longer each time", () => {
    const payoff = new DraftPayoff();
    const allowedOf = (steps: number) => Array.from({ length: steps }, () => payoff.allows()).filter(Boolean).length;
    payoff.record(1, false, 10, 1);
    payoff.record(1, true, 30, 4); // 7.5 ms a token: pays
    payoff.record(1, true, 28, 4);
    assert.equal(allowedOf(10), 10);
    payoff.record(1, true, 40, 2); // the running cost per token now above 10
    assert.equal(allowedOf(8), 0, "paused 8 steps");
    assert.equal(allowedOf(1), 1);
    payoff.record(1, true, 40, 1);
    payoff.record(1, true, 40, 1);
    assert.equal(allowedOf(16), 0, "then 16");
    assert.equal(allowedOf(1), 1);
    payoff.record(4, true, 40, 1);
    payoff.record(4, true, 40, 1);
    assert.equal(allowedOf(1), 1, "no plain steps of 4 streams measured yet: nothing to compare with");
  });
});

describe("configuration", () => {
  const config = (overrides: ConfigOverrides, env: Record<string, string> = {}) => loadConfig(overrides, { HOME: "/nonexistent", ...env });

  it("--speculative is off unless set; draft bounds are checked", () => {
    assert.deepEqual([config({}).speculative, config({ speculative: "ngram" }).speculative, config({ speculative: "auto" }).speculative], ["off", "ngram", "auto"]);
    assert.equal(config({}, { SHIMMY_SPECULATIVE: "auto" }).speculative, "auto");
    assert.deepEqual([config({}).draftMin, config({}).draftMax], [1, 8]);
    assert.throws(() => config({}, { SHIMMY_SPECULATIVE: "magic" }), /SHIMMY_SPECULATIVE=magic is not one of auto, off, ngram/);
    assert.throws(() => config({ draftMin: 5, draftMax: 4 }), /--draft-min 5 is more than --draft-max 4/);
  });

  it("a draft model alone means --speculative draft, which needs one", () => {
    assert.deepEqual([config({ draftModel: "small" }).speculative, config({ draftModel: "small", speculative: "auto" }).speculative], ["draft", "auto"]);
    assert.equal(config({}, { SHIMMY_DRAFT_MODEL: "small" }).draftModel, "small");
    assert.throws(() => config({ speculative: "draft" }), /--speculative draft needs a draft model/);
    assert.deepEqual([config({ draftAuto: true }).speculative, config({}, { SHIMMY_DRAFT_AUTO: "1" }).draftAuto, config({}).draftAuto], ["draft", true, false]);
  });
});

describe("over HTTP", () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ speculative: "ngram" });
  });
  after(async () => {
    await server.close();
  });

  it("timings report draft_n and draft_n_accepted, and /metrics counts them", async () => {
    const { status, json } = await postJson(`${server.url}/v1/completions`, { model: MODEL, prompt: PROMPTS[1], max_tokens: 80, temperature: 0 });
    assert.equal(status, 200);
    const { draft_n, draft_n_accepted } = json.timings;
    assert.ok(draft_n_accepted > 0 && draft_n >= draft_n_accepted, JSON.stringify(json.timings));
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`shimmy_speculative_draft_tokens_total\\{model="${MODEL}"\\} ${draft_n}\\n`));
    assert.match(metrics, new RegExp(`shimmy_speculative_accepted_tokens_total\\{model="${MODEL}"\\} ${draft_n_accepted}\\n`));
  });
});
