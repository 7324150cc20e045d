import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { loadConfig } from "../src/config/config.js";
import { InvalidGenerationError } from "../src/engine/errors.js";
import { getRuntime, runtimeOptionsFor } from "../src/engine/llama.js";
import { LoadedModel } from "../src/engine/loaded-model.js";
import { PromptWorker } from "../src/engine/prompt-worker/prompt-worker.js";
import type { ChatMessage, GenerationRequest } from "../src/engine/types.js";
import { Registry } from "../src/registry/registry.js";
import type { RunningServer } from "../src/server/server.js";
import { STORIES_CHAT_GGUF, STORIES_GGUF } from "./helpers/paths.js";
import { postJson, startTestServer } from "./helpers/server.js";

const config = loadConfig({ modelPaths: [STORIES_GGUF, STORIES_CHAT_GGUF], scanDefaultLocations: false, threads: 1, gpu: false, parallel: 1, ctxSize: 8192 }, { HOME: "/nonexistent" });

/** A conversation long enough to be rendered in the worker (more than 64 messages). */
const longChat: ChatMessage[] = Array.from({ length: 100 }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: `Tom and Sue went to the park on day ${i}. They played with a red ball and a big dog. The sun was warm and they were happy all day long. At night they went home and ate soup with mom and dad.` }));
const story = "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. ".repeat(300);

describe("the prompt worker renders and tokenizes exactly as the main thread does", () => {
  let worker: PromptWorker;
  let offThread: LoadedModel;
  let onThread: LoadedModel;
  before(async () => {
    const llama = await getRuntime(runtimeOptionsFor(config));
    const spec = new Registry(config).find("stories260k-chat")!;
    worker = new PromptWorker(runtimeOptionsFor(config));
    offThread = await LoadedModel.load(llama, spec, STORIES_CHAT_GGUF, { ...config, promptWorker: worker });
    onThread = await LoadedModel.load(llama, spec, STORIES_CHAT_GGUF, config);
  });
  after(async () => {
    await offThread.dispose();
    await onThread.dispose();
    await worker.close();
  });

  const base: Omit<GenerationRequest, "input"> = { model: "stories260k-chat", sampling: { temperature: 0 }, stop: [], maxTokens: 1 };

  it("a long chat: the same prompt tokens, and the worker did the work", async () => {
    const jobs = worker.completedJobs;
    const a = await offThread.prepare({ ...base, input: { kind: "chat", messages: longChat } });
    const b = await onThread.prepare({ ...base, input: { kind: "chat", messages: longChat } });
    assert.ok(a.promptTokens.length > 1000, `${a.promptTokens.length} tokens`);
    assert.deepEqual(a.promptTokens, b.promptTokens);
    // One render and one tokenize.
    assert.equal(worker.completedJobs - jobs, 2);
    const { done } = await offThread.complete(a);
    assert.equal(done.usage.promptTokens, b.promptTokens.length);
  });

  it("a long text: the same tokens with and without special-token parsing and BOS/EOS", async () => {
    const text = `<s>${story}</s>`;
    for (const options of [{ addSpecial: true, parseSpecial: true }, { addSpecial: false, parseSpecial: false }]) {
      const jobs = worker.completedJobs;
      const a = await offThread.tokenize(text, options);
      assert.equal(worker.completedJobs - jobs, 1);
      assert.deepEqual(a, await onThread.tokenize(text, options), JSON.stringify(options));
    }
  });

  it("short inputs stay on the calling thread", async () => {
    const jobs = worker.completedJobs;
    await offThread.prepare({ ...base, input: { kind: "chat", messages: longChat.slice(0, 3) } });
    await offThread.tokenize("Once upon a time", { addSpecial: true, parseSpecial: true });
    assert.equal(worker.completedJobs, jobs);
  });

  it("a conversation the template rejects is the request's error, from the worker too", async () => {
    // The stories chat template raises on a role it does not know.
    const bad: ChatMessage[] = [...longChat, { role: "tool", content: "42", toolCallId: "x" }];
    const errors = await Promise.allSettled([offThread.prepare({ ...base, input: { kind: "chat", messages: bad } }), onThread.prepare({ ...base, input: { kind: "chat", messages: bad } })]);
    const [a, b] = errors.map((r) => (r.status === "rejected" ? r.reason : undefined));
    if (b === undefined) return assert.equal(a, undefined, "the worker failed where the main thread did not");
    assert.ok(a instanceof InvalidGenerationError, String(a));
    assert.equal(a.message, (b as Error).message);
  });
});

/**
 * Sends `body` and counts the /health round trips completed, one after another, after the request
 * reached its model (the pool counts it in flight: parsing and validation are done) and before its
 * answer. The server runs in this process: while its event loop is blocked, so is this loop, so
 * a count above zero means preparing the request left the loop free.
 */
async function healthWhilePrepared(server: RunningServer, path: string, body: unknown): Promise<{ status: number; healthAnswers: number }> {
  const inFlight = server.ctx.pool.inFlight;
  let answered = false;
  const big = postJson(`${server.url}${path}`, body).then((r) => {
    answered = true;
    return r;
  });
  while (server.ctx.pool.inFlight === inFlight && !answered) await new Promise((r) => setImmediate(r));
  let healthAnswers = 0;
  while (!answered) {
    const r = await fetch(`${server.url}/health`);
    await r.text();
    if (!answered) healthAnswers++;
  }
  return { status: (await big).status, healthAnswers };
}

describe("/health is answered while a large request is prepared", () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ parallel: 1, ctxSize: 8192 });
    // Loaded first: the count of requests in flight covers loaded models only.
    for (const model of ["stories260k", "stories260k-chat"]) assert.equal((await postJson(`${server.url}/v1/completions`, { model, prompt: "Once", max_tokens: 1 })).status, 200);
  });
  after(async () => {
    await server.close();
  });

  it("a 10,000-message chat is rendered off the event loop", async () => {
    const messages = Array.from({ length: 10_000 }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: `hello there ${i}` }));
    const { status, healthAnswers } = await healthWhilePrepared(server, "/v1/chat/completions", { model: "stories260k-chat", messages, max_tokens: 1 });
    assert.equal(status, 400); // longer than the context, found after rendering
    assert.ok(healthAnswers >= 3, `${healthAnswers} /health answers while it was prepared`);
  });

  it("a 2 MB text is tokenized off the event loop", async () => {
    const { status, healthAnswers } = await healthWhilePrepared(server, "/tokenize", { model: "stories260k", content: story.repeat(20).slice(0, 2_000_000) });
    assert.equal(status, 200);
    assert.ok(healthAnswers >= 3, `${healthAnswers} /health answers while it was tokenized`);
  });

  it("shutting down while the worker tokenizes waits for it and closes cleanly", async () => {
    const local = await startTestServer({ parallel: 1, drainTimeoutMs: 200 });
    const outcome = fetch(`${local.url}/tokenize`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "stories260k", content: story.repeat(20).slice(0, 2_000_000) }) }).then(
      (r) => r.status,
      (e: Error) => e.name,
    );
    await new Promise((r) => setTimeout(r, 300));
    // A thread ended in the middle of a native tokenize aborts the whole process (this test runner
    // with it): close() must wait for the worker's job, then end the thread.
    await local.close();
    // Cut at the drain deadline (or answered, on a fast machine).
    assert.ok([200, "TypeError"].includes(await outcome));
  });
});
