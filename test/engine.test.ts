import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Token } from "node-llama-cpp";
import { after, before, describe, it } from "node:test";
import { defaultThreads, loadConfig } from "../src/config/config.js";
import { ContextOverflowError } from "../src/engine/errors.js";
import { nativeBuildExists } from "../src/engine/native-build.js";
import { median } from "../src/engine/rates.js";
import { THREAD_INVARIANT_CELLS } from "../src/engine/decode-loop.js";
import { ThreadChooser } from "../src/engine/thread-chooser.js";
import { createModelPool } from "../src/engine/create-pool.js";
import type { LoadedModel } from "../src/engine/loaded-model.js";
import type { ModelPool } from "../src/engine/model-pool.js";
import { StopMatcher, TokenTextDecoder } from "../src/engine/text-stream.js";
import type { DoneEvent, GenerationRequest } from "../src/engine/types.js";
import { golden } from "./helpers/server.js";
import { STORIES_CHAT_GGUF, STORIES_GGUF, tempDir } from "./helpers/paths.js";

let pool: ModelPool;
let model: LoadedModel;

before(async () => {
  const config = loadConfig({ modelPaths: [STORIES_GGUF, STORIES_CHAT_GGUF], scanDefaultLocations: false, threads: 1, gpu: false, parallel: 2 }, { HOME: "/nonexistent" });
  pool = createModelPool(config);
  // Held for the whole file: the pool must not unload it between tests.
  model = (await pool.acquire("stories260k-chat")).model;
});
after(async () => {
  await pool.close();
});

async function run(request: Omit<GenerationRequest, "model">): Promise<{ text: string; done: DoneEvent }> {
  return model.complete(await model.prepare({ model: "stories260k-chat", ...request }));
}

describe("ModelPool", () => {
  it("shares one load among concurrent first requests", async () => {
    const [a, b] = await Promise.all([pool.acquire("stories260k"), pool.acquire("STORIES260K")]);
    assert.equal(a.model, b.model);
    const c = await pool.acquire("stories260k");
    assert.equal(c.model, a.model);
    for (const lease of [a, b, c]) lease.release();
  });
});

describe("thread plan", () => {
  it("defaults to every core (at most 16), half of them for single tokens on the prebuilt binary; a chosen count applies to both", () => {
    assert.deepEqual(
      [defaultThreads(1, false), defaultThreads(2, false), defaultThreads(64, false), defaultThreads(2, true), defaultThreads(64, true)],
      [
        { threads: 1, batchThreads: 1 },
        { threads: 1, batchThreads: 2 },
        { threads: 8, batchThreads: 16 },
        { threads: 2, batchThreads: 2 },
        { threads: 16, batchThreads: 16 },
      ],
    );
    const pick = (overrides: { threads?: number; batchThreads?: number }, env: Record<string, string> = {}) => {
      const c = loadConfig(overrides, { HOME: "/nonexistent", ...env }, 2);
      return [c.threads, c.batchThreads];
    };
    assert.deepEqual(pick({}), [1, 2]);
    assert.deepEqual(pick({ threads: 1 }), [1, 1]);
    assert.deepEqual(pick({}, { SHIMMY_THREADS: "2" }), [2, 2]);
    assert.deepEqual(pick({ threads: 1 }, { SHIMMY_THREADS_BATCH: "3" }), [1, 3]);
    assert.deepEqual(pick({ batchThreads: 1 }), [1, 1]);
    assert.deepEqual(pick({}, { SHIMMY_NATIVE: "1" }), [2, 2]);
  });

  it("--threads auto (also when unset): the default count first, the other of all/half the cores as the alternative", () => {
    const pick = (overrides: { threads?: number | "auto" }, env: Record<string, string> = {}, cores = 2) => {
      const c = loadConfig(overrides, { HOME: "/nonexistent", ...env }, cores);
      return [c.threads, c.threadsAlternative, c.batchThreads];
    };
    assert.deepEqual(pick({ threads: "auto" }), [1, 2, 2]);
    assert.deepEqual(pick({}), [1, 2, 2], "unset: auto");
    assert.deepEqual(pick({ threads: 1 }), [1, undefined, 1], "a count: fixed");
    assert.deepEqual(pick({}, { SHIMMY_THREADS: "2" }), [2, undefined, 2]);
    assert.deepEqual(pick({}, { SHIMMY_THREADS: "auto" }), [1, 2, 2]);
    assert.deepEqual(pick({ threads: "auto" }, { SHIMMY_NATIVE: "1" }), [2, 1, 2]);
    assert.deepEqual(pick({ threads: "auto" }, {}, 8), [4, 8, 8]);
    assert.deepEqual(pick({ threads: "auto" }, {}, 1), [1, undefined, 1], "one core: nothing to choose");
    assert.deepEqual(pick({ threads: 2 }, { SHIMMY_THREADS: "auto" }), [2, undefined, 2], "a chosen count wins over the variable");
  });

  it("--threads auto times both counts on a real model, and the golden text holds", async () => {
    const config = loadConfig({ modelPaths: [STORIES_GGUF], scanDefaultLocations: false, threads: "auto", gpu: false, parallel: 2 }, { HOME: "/nonexistent" }, 2);
    const pool = createModelPool(config);
    const lease = await pool.acquire("stories260k");
    try {
      const m = lease.model;
      const g = golden.greedy[0]!;
      const { done } = await m.complete(await m.prepare({ model: "stories260k", input: { kind: "text", text: g.prompt }, sampling: { temperature: 0 }, maxTokens: g.maxTokens, stop: [] }));
      assert.deepEqual(done.tokenIds, g.ids);
      assert.ok(g.maxTokens > 10, "enough one-token steps for the warm-up and a try");
      assert.deepEqual([...m.oneTokenThreads.measuredMs.keys()].sort(), [1, 2]);
      assert.ok([...m.oneTokenThreads.measuredMs.values()].every((ms) => ms > 0));
      assert.ok([1, 2].includes(m.oneTokenThreads.current));
    } finally {
      lease.release();
      await pool.close();
    }
  });

  it("--threads auto leaves the configured count alone past the thread-invariant KV cells, so the text is the fixed count's", async () => {
    const text = async (threads: number | "auto") => {
      const config = loadConfig({ modelPaths: [STORIES_GGUF], scanDefaultLocations: false, threads, gpu: false, parallel: 1 }, { HOME: "/nonexistent" }, 2);
      const pool = createModelPool(config);
      const lease = await pool.acquire("stories260k");
      try {
        const m = lease.model;
        // Watch the steps on node-llama-cpp's native context (the object the decode loop drives):
        // the KV position and thread count of each one-token decode.
        const native = (m.context as unknown as { _ctx: Record<string, (...args: never[]) => unknown> })._ctx;
        const steps: { position: number; threads: number }[] = [];
        let size = 0;
        let position = 0;
        let threadsNow = -1;
        const watch = (name: string, before: (...args: never[]) => void) => {
          const real = native[name]!.bind(native);
          // An own property: the addon's methods are read-only on its prototype.
          Object.defineProperty(native, name, {
            value: (...args: never[]) => {
              before(...args);
              return real(...args);
            },
          });
        };
        watch("initBatch", (n: number) => void (size = n));
        watch("addToBatch", (_sequence: number, first: number) => void (position = first));
        watch("setThreads", (n: number) => void (threadsNow = n));
        watch("decodeBatch", () => void (size === 1 && steps.push({ position, threads: threadsNow })));
        const eos = m.model.tokens.eos!;
        const { done } = await m.complete(
          await m.prepare({ model: "stories260k", input: { kind: "text", text: golden.greedy[0]!.prompt }, sampling: { temperature: 0, logitBias: new Map([[eos, -100]]) }, maxTokens: 400, stop: [] }),
        );
        return { ids: done.tokenIds, steps };
      } finally {
        lease.release();
        await pool.close();
      }
    };
    const fixed = await text(1);
    const auto = await text("auto");
    assert.equal(auto.ids.length, 400);
    assert.deepEqual(auto.ids, fixed.ids);
    const early = auto.steps.filter((s) => s.position < THREAD_INVARIANT_CELLS);
    const late = auto.steps.filter((s) => s.position >= THREAD_INVARIANT_CELLS);
    assert.ok(late.length > 100, `steps past the invariant cells: ${late.length}`);
    assert.ok(early.some((s) => s.threads === 2), "auto tried the other count while the cache was small");
    assert.deepEqual([...new Set(late.map((s) => s.threads))], [1], "the configured count past the invariant cells");
  });

  it("the chooser keeps the faster count for one-token steps, tries the other sparingly, ignores a lone slow step, and follows a change", () => {
    const tuning = { window: 4, tryLength: 2, interval: 8, maxInterval: 32, margin: 0.95 };
    /** Runs `steps` one-token steps with a duration per thread count; returns the counts used. */
    const run = (chooser: ThreadChooser, steps: number, ms: (threads: number, step: number) => number) => {
      const used: number[] = [];
      for (let i = 0; i < steps; i++) {
        const t = chooser.next();
        used.push(t);
        chooser.record(t, ms(t, i));
      }
      return used;
    };
    const fixed = new ThreadChooser(2, undefined, tuning);
    assert.deepEqual(new Set(run(fixed, 50, () => 5)), new Set([2]));
    assert.deepEqual(new Set(run(new ThreadChooser(2, 2, tuning), 50, () => 5)), new Set([2]), "the same count twice: nothing to choose");

    // 2 threads faster: tried for two steps once the window is full, then kept (1 thread tried once, two steps, in the next 20).
    const c = new ThreadChooser(1, 2, tuning);
    const first = run(c, 26, (t) => (t === 2 ? 5 : 7));
    assert.deepEqual(first.slice(0, 6), [1, 1, 1, 1, 2, 2]);
    assert.deepEqual(first.slice(6).filter((t) => t === 1).length, 2, `used ${first.join(",")}`);
    assert.equal(c.current, 2);
    assert.deepEqual(Object.fromEntries(c.measuredMs), { 1: 7, 2: 5 });

    // 1 thread keeps losing: tried every 8, then 16, then 32 steps, never more often.
    const tries = run(c, 200, (t) => (t === 2 ? 5 : 7)).flatMap((t, i, used) => (t === 1 && used[i - 1] !== 1 ? [i] : []));
    assert.ok(tries.length >= 4 && tries.length <= 8, `tries at ${tries.join(",")}`);
    const gaps = tries.slice(1).map((t, i) => t - tries[i]!);
    assert.ok(gaps.every((g, i) => i === 0 || g >= gaps[i - 1]!), `gaps ${gaps.join(",")}`);
    assert.ok(gaps.every((g) => g <= 32 + tuning.tryLength));

    // A lone slow step of the count in use (every 10th here) moves nothing and starts no try
    // (30 steps: at most the one try the interval schedules).
    const spiky = run(c, 30, (t, i) => (t === 1 ? 7 : i % 10 === 5 ? 40 : 5));
    assert.equal(c.current, 2);
    assert.ok(spiky.filter((t) => t === 1).length <= tuning.tryLength, `used ${spiky.join(",")}`);

    // 2 threads turn slow for good (the prebuilt binary's slow mode): the chooser moves to 1 within a window and a try, not at the next scheduled try.
    const slow = run(c, 12, (t) => (t === 2 ? 20 : 7));
    assert.equal(c.current, 1);
    assert.ok(slow.filter((t) => t === 2).length <= tuning.window, `used ${slow.join(",")}`);
    // …and back once 2 threads are fast again (within the longest interval).
    run(c, 40, (t) => (t === 2 ? 5 : 7));
    assert.equal(c.current, 2);
  });

  it("decodes prompts on the batch threads and single tokens on the others, with unchanged output", async () => {
    const config = loadConfig({ modelPaths: [STORIES_GGUF], scanDefaultLocations: false, threads: 1, batchThreads: 2, gpu: false, parallel: 2 }, { HOME: "/nonexistent" });
    const split = createModelPool(config);
    const lease = await split.acquire("stories260k");
    try {
      const m = lease.model;
      const g = golden.greedy[1]!;
      const request = (maxTokens: number) => m.prepare({ model: "stories260k", input: { kind: "text", text: g.prompt }, sampling: { temperature: 0 }, maxTokens, stop: [] });
      // One token asked: the last decode was the whole prompt, a batch.
      await m.complete(await request(1));
      assert.equal(m.context.currentThreads, 2);
      const { text, done } = await m.complete(await request(g.maxTokens));
      assert.equal(m.context.currentThreads, 1);
      assert.deepEqual(done.tokenIds, g.ids);
      assert.equal(text, g.text);
    } finally {
      lease.release();
      await split.close();
    }
  });
});

describe("median of repeated measurements", () => {
  it("takes the middle value, the mean of the two middle values for an even count, NaN for none", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([7]), 7);
    assert.ok(Number.isNaN(median([])));
  });
});

describe("native build detection", () => {
  it("finds a finished build with Shimmy's CMake options, and nothing else", () => {
    const tmp = tempDir();
    try {
      const build = (name: string, options: object, done = true) => {
        const dir = join(tmp.path, "llama", "localBuilds", name);
        mkdirSync(join(dir, "Release"), { recursive: true });
        writeFileSync(join(dir, "Release", "_nlcBuildMetadata.json"), JSON.stringify({ buildOptions: options }));
        if (done) writeFileSync(join(dir, "buildDone.status"), "");
      };
      assert.equal(nativeBuildExists(tmp.path), false, "no localBuilds folder");
      build("unfinished", { gpu: false, customCmakeOptions: { GGML_NATIVE: "ON", GGML_OPENMP: "ON" } }, false);
      build("cuda", { gpu: "cuda", customCmakeOptions: { GGML_NATIVE: "ON", GGML_OPENMP: "ON" } });
      build("other-options", { gpu: false, customCmakeOptions: { GGML_NATIVE: "ON" } });
      assert.equal(nativeBuildExists(tmp.path), false);
      build("native", { gpu: false, customCmakeOptions: { GGML_OPENMP: "ON", GGML_NATIVE: "ON" } });
      assert.equal(nativeBuildExists(tmp.path), true);
    } finally {
      tmp.cleanup();
    }
  });

  it("is used by default only when nothing chose otherwise and no GPU may be present", () => {
    const machine = (gpu: boolean, built: boolean) => ({ gpuMayBeAvailable: () => gpu, nativeBuildExists: () => built });
    const native = (m: ReturnType<typeof machine>, overrides: { gpu?: false; nativeBuild?: boolean } = {}, env: Record<string, string> = {}) =>
      loadConfig(overrides, { HOME: "/nonexistent", ...env }, 2, m).nativeBuild;
    assert.equal(native(machine(false, true)), true);
    assert.equal(native(machine(false, false)), false, "nothing built");
    assert.equal(native(machine(true, true)), false, "a GPU may be present");
    assert.equal(native(machine(true, true), { gpu: false }), true, "--gpu off");
    assert.equal(native(machine(false, true), { nativeBuild: false }), false, "--no-native");
    assert.equal(native(machine(false, true), {}, { SHIMMY_NATIVE: "0" }), false, "SHIMMY_NATIVE=0");
    assert.equal(loadConfig({}, { HOME: "/nonexistent" }, 2).nativeBuild, false, "no probe: the prebuilt binary");
  });
});

describe("generation", () => {
  it("produces golden.json's greedy ids and text", async () => {
    const g = golden.greedy[1]!;
    const { text, done } = await run({ input: { kind: "text", text: g.prompt }, sampling: { temperature: 0 }, maxTokens: g.maxTokens, stop: [] });
    assert.deepEqual(done.tokenIds, g.ids);
    assert.equal(text, g.text);
    assert.equal(done.finishReason, "length");
    assert.deepEqual(done.usage, { promptTokens: g.promptIdsWithBos.length, completionTokens: g.maxTokens, cachedTokens: done.usage.cachedTokens });
  });

  it("renders the golden chat exactly as golden.json's token ids", async () => {
    const prepared = await model.prepare({ model: "stories260k-chat", input: { kind: "chat", messages: golden.chat.messages }, sampling: { temperature: 0 }, stop: [] });
    assert.equal(await model.renderChat(prepared.request), golden.chat.rendered);
    assert.deepEqual(prepared.promptTokens, golden.chat.renderedIds);
  });

  it("stops within one token of an abort", async () => {
    const controller = new AbortController();
    let tokens = 0;
    const prepared = await model.prepare({ model: "stories260k-chat", input: { kind: "text", text: "Once upon a time" }, sampling: { temperature: 0 }, maxTokens: 400, stop: [], signal: controller.signal });
    const done = await model.generate(prepared, () => {
      tokens++;
      controller.abort();
    });
    assert.equal(tokens, 1);
    assert.equal(done.finishReason, "abort");
    assert.equal(done.usage.completionTokens, 1);
  });

  it("reuses a shared prefix (second chat turn) and gives the same output as a cold run", async () => {
    const turn1 = [{ role: "system" as const, content: "A short story." }, { role: "user" as const, content: "Once upon a time" }];
    const first = await run({ input: { kind: "chat", messages: turn1 }, sampling: { temperature: 0 }, maxTokens: 10, stop: [] });
    const turn2 = [...turn1, { role: "assistant" as const, content: first.text }, { role: "user" as const, content: " One day, she" }];
    const warm = await run({ input: { kind: "chat", messages: turn2 }, sampling: { temperature: 0 }, maxTokens: 15, stop: [] });
    assert.ok(warm.done.usage.cachedTokens > 10, `cached ${warm.done.usage.cachedTokens}`);
    // Cold: fill both slots with something unrelated first, so nothing is shared but BOS.
    await Promise.all([1, 2].map(() => run({ input: { kind: "text", text: "Tom and Sue" }, sampling: { temperature: 0 }, maxTokens: 2, stop: [] })));
    const cold = await run({ input: { kind: "chat", messages: turn2 }, sampling: { temperature: 0 }, maxTokens: 15, stop: [] });
    assert.ok(cold.done.usage.cachedTokens <= 1);
    assert.equal(warm.text, cold.text);
  });

  it("refuses a prompt that does not fit the context with a typed error", async () => {
    await assert.rejects(
      () => model.prepare({ model: "stories260k-chat", input: { kind: "text", text: "Once upon a time ".repeat(300) }, sampling: { temperature: 0 }, stop: [] }),
      (e: unknown) => e instanceof ContextOverflowError && e.contextSize === 512 && e.promptTokens > 512,
    );
  });

  it("ends with finish reason length when the context fills up", async () => {
    const { done } = await run({ input: { kind: "text", text: "Once upon a time" }, sampling: { temperature: 0 }, stop: [] });
    assert.equal(done.finishReason, "length");
    assert.equal(done.usage.promptTokens + done.usage.completionTokens, 512);
  });
});

describe("text streaming", () => {
  it("never emits half a UTF-8 character across byte-fallback tokens", () => {
    const c = golden.tokenization.find((t) => t.text === "naïve café 😀")!;
    const decoder = new TokenTextDecoder(model.model, [1 as Token]);
    const pieces = c.ids.map((id) => decoder.push(id as Token));
    pieces.push(decoder.flush());
    assert.ok(pieces.every((p) => !p.includes("\uFFFD")), JSON.stringify(pieces));
    assert.equal(pieces.join("").trimStart(), c.text);
    assert.ok(pieces.filter((p) => p === "").length >= 3, "the emoji's 4 byte tokens are held until complete");
  });

  it("holds back possible stop-string prefixes and never emits the stop text", () => {
    const m = new StopMatcher(["</s>", "STOP"]);
    assert.deepEqual(m.push("hello <"), { emit: "hello ", stopped: false });
    assert.deepEqual(m.push("/"), { emit: "", stopped: false });
    assert.deepEqual(m.push("x"), { emit: "</x", stopped: false });
    assert.deepEqual(m.push("ab ST"), { emit: "ab ", stopped: false });
    assert.deepEqual(m.push("OP more"), { emit: "", stopped: true });
    const n = new StopMatcher(["ab"]);
    assert.deepEqual(n.push("xa"), { emit: "x", stopped: false });
    assert.equal(n.flush(), "a");
  });
});
