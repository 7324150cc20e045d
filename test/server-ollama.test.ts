import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Ollama } from "ollama";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../src/config/config.js";
import { type RunningServer, startServer } from "../src/server/server.js";
import { addOllamaModel } from "./helpers/ollama-store.js";
import { STORIES_GGUF, tempDir } from "./helpers/paths.js";
import { golden, postJson, startTestServer, until } from "./helpers/server.js";

let server: RunningServer;
let ollama: Ollama;
before(async () => {
  server = await startTestServer();
  ollama = new Ollama({ host: server.url });
});
after(() => server.close());

const loadedNames = async (): Promise<string[]> => (await ollama.ps()).models.map((m) => m.name);

/** Greedy with Ollama's default repeat penalty (1.1) turned off: the golden text. */
const greedy = (n: number) => ({ temperature: 0, repeat_penalty: 1, num_predict: n });

/** Ollama's ResponseError, as the client throws it. */
async function rejected(p: Promise<unknown>): Promise<{ status_code: number; error: string }> {
  try {
    await p;
  } catch (e) {
    return e as { status_code: number; error: string };
  }
  return assert.fail("the request succeeded");
}

describe("Ollama API with the ollama client", () => {
  it("lists the models (/api/tags) and the version", async () => {
    const { models } = await ollama.list();
    assert.deepEqual(models.map((m) => m.name).sort(), ["stories260k", "stories260k-chat"]);
    const m = models.find((x) => x.name === "stories260k")!;
    assert.equal(m.details.format, "gguf");
    assert.equal(m.details.family, "llama");
    assert.equal(m.details.quantization_level, "F32");
    assert.match(m.digest, /^[0-9a-f]{64}$/);
    assert.ok(m.size > 1_000_000);
    assert.ok(new Date(m.modified_at).getTime() > 0);
    assert.equal((await ollama.version()).version, "test"); // what startTestServer names the build
  });

  it("generate: golden greedy text, real counts and durations", async () => {
    const g = golden.greedy[0]!;
    const r = await ollama.generate({ model: "stories260k", prompt: g.prompt, options: greedy(g.maxTokens) });
    assert.equal(r.response, g.text);
    assert.equal(r.done, true);
    assert.equal(r.done_reason, "length");
    assert.equal(r.eval_count, g.maxTokens);
    assert.equal(r.prompt_eval_count, g.promptIdsWithBos.length);
    assert.ok(r.eval_duration > 0 && r.prompt_eval_duration > 0);
    assert.ok(r.total_duration >= r.eval_duration + r.prompt_eval_duration);
  });

  it("generate streams NDJSON by default: the pieces make the golden text, the last line has the counts", async () => {
    const g = golden.greedy[0]!;
    const res = await fetch(`${server.url}/api/generate`, { method: "POST", body: JSON.stringify({ model: "stories260k", prompt: g.prompt, options: greedy(g.maxTokens) }) });
    assert.equal(res.headers.get("content-type"), "application/x-ndjson");
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    const last = lines.pop()!;
    assert.ok(lines.length > 1 && lines.every((l) => l.done === false));
    assert.equal(lines.map((l) => l.response).join(""), g.text);
    assert.equal(last.done, true);
    assert.equal(last.eval_count, g.maxTokens);

    let text = "";
    for await (const part of await ollama.generate({ model: "stories260k", prompt: g.prompt, stream: true, options: greedy(g.maxTokens) })) text += part.response;
    assert.equal(text, g.text);
  });

  it("chat: the model's template renders the messages, the same text as /v1/chat/completions", async () => {
    const r = await ollama.chat({ model: "stories260k-chat", messages: golden.chat.messages, options: greedy(12) });
    assert.equal(r.message.role, "assistant");
    assert.equal(r.prompt_eval_count, golden.chat.renderedIds.length);
    assert.equal(r.eval_count, 12);
    const openai = await postJson(`${server.url}/v1/chat/completions`, { model: "stories260k-chat", messages: golden.chat.messages, max_tokens: 12, temperature: 0, repeat_penalty: 1 });
    assert.equal(r.message.content, openai.json.choices[0].message.content);
    assert.ok(r.message.content.length > 0);

    let streamed = "";
    let last: { done: boolean; done_reason?: string } | undefined;
    for await (const part of await ollama.chat({ model: "stories260k-chat", messages: golden.chat.messages, stream: true, options: greedy(12) })) {
      streamed += part.message.content;
      last = part;
    }
    assert.equal(streamed, r.message.content);
    assert.equal(last?.done_reason, "length");
  });

  it("unset options take Ollama's defaults: top_k 40, top_p 0.9, repeat_penalty 1.1", async () => {
    const g = golden.greedy[1]!;
    const r = await ollama.generate({ model: "stories260k", prompt: g.prompt, options: { temperature: 0, num_predict: 60 } });
    const same = await postJson(`${server.url}/v1/completions`, { model: "stories260k", prompt: g.prompt, max_tokens: 60, temperature: 0, top_k: 40, top_p: 0.9, repeat_penalty: 1.1 });
    assert.equal(r.response, same.json.choices[0].text);
    assert.notEqual(r.response, g.text.slice(0, r.response!.length), "the penalty changed the greedy text");
  });

  it("a name without a tag means :latest, and :latest finds an untagged name", async () => {
    const r = await ollama.generate({ model: "stories260k:latest", prompt: "Once", options: { temperature: 0, num_predict: 2 } });
    assert.equal(r.model, "stories260k");
  });

  it("options are honoured: stop strings, seed, num_ctx as a bound", async () => {
    const g = golden.greedy[0]!;
    const stopped = await ollama.generate({ model: "stories260k", prompt: g.prompt, options: { ...greedy(g.maxTokens), stop: [" Lily"] } });
    assert.equal(stopped.response, g.text.slice(0, g.text.indexOf(" Lily")));
    assert.equal(stopped.done_reason, "stop");
    const a = await ollama.generate({ model: "stories260k", prompt: g.prompt, options: { seed: 7, num_predict: 20 } });
    const b = await ollama.generate({ model: "stories260k", prompt: g.prompt, options: { seed: 7, num_predict: 20 } });
    assert.equal(a.response, b.response);
    // num_ctx bounds prompt + generation: a 5-token prompt in 8 tokens leaves room for 3.
    const bounded = await ollama.generate({ model: "stories260k", prompt: g.prompt, options: { temperature: 0, num_ctx: 8 } });
    assert.equal(bounded.eval_count, 3);
    assert.equal(bounded.done_reason, "length");
    // More than a slot holds is capped at the slot (clients such as editors send their own num_ctx).
    const capped = await ollama.generate({ model: "stories260k", prompt: g.prompt, options: { ...greedy(4), num_ctx: 100_000 } });
    assert.equal(capped.response, (await ollama.generate({ model: "stories260k", prompt: g.prompt, options: greedy(4) })).response);
    const tooLong = await postJson(`${server.url}/api/generate`, { model: "stories260k", prompt: "Once upon a time ".repeat(40), options: { num_ctx: 16 } });
    assert.equal(tooLong.status, 400);
    assert.match(tooLong.json.error, /context/);
  });

  it("load, keep_alive and unload (empty prompt / messages)", async () => {
    const load = await ollama.generate({ model: "stories260k-chat", prompt: "", keep_alive: "10m" });
    assert.equal(load.done_reason, "load");
    const ps = (await ollama.ps()).models.find((m) => m.name === "stories260k-chat")!;
    const ahead = new Date(ps.expires_at).getTime() - Date.now();
    assert.ok(ahead > 9 * 60_000 && ahead <= 10 * 60_000, `expires in ${ahead} ms`);
    const health = (await (await fetch(`${server.url}/health`)).json()) as { loaded: { name: string; context_per_slot: number }[] };
    // context_length is in Ollama's /api/ps, not yet in the client's types.
    assert.equal((ps as unknown as { context_length: number }).context_length, health.loaded.find((m) => m.name === "stories260k-chat")!.context_per_slot);

    // Negative: never unloads. Each request sets it anew: one without keep_alive brings back the default (5m).
    await ollama.chat({ model: "stories260k-chat", messages: [], keep_alive: -1 });
    assert.ok(new Date((await ollama.ps()).models.find((m) => m.name === "stories260k-chat")!.expires_at).getFullYear() > 2100);
    await ollama.chat({ model: "stories260k-chat", messages: [{ role: "user", content: "Hi" }], options: { num_predict: 1 } });
    const back = new Date((await ollama.ps()).models.find((m) => m.name === "stories260k-chat")!.expires_at).getTime() - Date.now();
    assert.ok(back > 4 * 60_000 && back <= 5 * 60_000, `expires in ${back} ms`);

    const unload = await ollama.chat({ model: "stories260k-chat", messages: [], keep_alive: 0 });
    assert.equal(unload.done_reason, "unload");
    assert.ok(!(await loadedNames()).includes("stories260k-chat"));

    // keep_alive 0 on a generation: unloaded once it is answered.
    await ollama.generate({ model: "stories260k-chat", prompt: "Hi", keep_alive: 0, options: { num_predict: 2 } });
    await until(async () => !(await loadedNames()).includes("stories260k-chat"), "the model to unload after its request");
  });

  it("an unload asked for while a stream runs waits for it; a cancelled stream frees its slot", async () => {
    const stream = await ollama.generate({ model: "stories260k", prompt: "Once upon a time", stream: true, keep_alive: "5m", options: { num_predict: 400 } });
    const parts = stream[Symbol.asyncIterator]();
    await parts.next();
    assert.equal((await ollama.generate({ model: "stories260k", prompt: "", keep_alive: 0 })).done_reason, "unload");
    assert.ok((await loadedNames()).includes("stories260k"), "still loaded while its stream runs");
    stream.abort();
    await until(async () => !(await loadedNames()).includes("stories260k"), "the model to unload once the stream was cancelled");
  });

  it("show: details, the chat template, the file's metadata, capabilities", async () => {
    const s = await ollama.show({ model: "stories260k-chat" });
    assert.match(s.template, /message\['role'\]/);
    assert.equal(s.details.family, "llama");
    assert.deepEqual(s.capabilities, ["completion", "tools"], "tools through the generic fallback here");
    assert.equal((s.model_info as unknown as Record<string, unknown>)["general.architecture"], "llama");
  });

  it("errors come in Ollama's envelope with their status codes", async () => {
    const missing = await rejected(ollama.generate({ model: "nope", prompt: "x" }));
    assert.equal(missing.status_code, 404);
    assert.match(missing.error, /not found/);
    const cases: [unknown, number, RegExp][] = [
      [{ model: "stories260k", prompt: "x", foo: 1 }, 400, /foo/],
      [{ model: "stories260k", prompt: "x", options: { mirostat: 2 } }, 400, /mirostat/],
      [{ model: "stories260k", prompt: "x", options: { temperature: "hot" } }, 400, /temperature/],
      [{ model: "stories260k", prompt: "x", system: "Be brief." }, 400, /no chat template/],
      [{ model: "stories260k", prompt: "x", think: true }, 400, /thinking/],
      [{ model: "stories260k", prompt: "x", images: ["aGk="] }, 400, /images/],
      [{ model: "stories260k", prompt: "x", keep_alive: "soon" }, 400, /keep_alive/],
      [{ model: "stories260k-chat", messages: [{ role: "user", content: "x" }], tools: [{ type: "function" }] }, 400, /tools/],
      ["{not json", 400, /JSON/],
    ];
    for (const [body, status, message] of cases) {
      const route = typeof body === "object" && body !== null && "messages" in body ? "chat" : "generate";
      const r = await postJson(`${server.url}/api/${route}`, body);
      assert.equal(r.status, status, JSON.stringify(body));
      assert.deepEqual(Object.keys(r.json), ["error"], JSON.stringify(r.json));
      assert.match(r.json.error, message);
    }
    for (const [route, status] of [["embed", 400], ["push", 501], ["create", 501], ["nothing", 404]] as const) {
      const r = await postJson(`${server.url}/api/${route}`, { model: "stories260k" });
      assert.equal(r.status, status, route);
      assert.equal(typeof r.json.error, "string");
    }
  });

  it("runner options are accepted and ignored; logprobs come as Ollama sends them (golden top-5)", async () => {
    const r: any = await ollama.generate({ model: "stories260k", prompt: golden.greedy[0]!.prompt, raw: true, options: { ...greedy(1), num_thread: 4, num_gpu: 0, num_keep: 4, use_mmap: true }, logprobs: true, top_logprobs: 5 } as any);
    assert.equal(r.response, ",");
    assert.equal(r.logprobs.length, 1);
    const top = r.logprobs[0].top_logprobs as { token: string; logprob: number }[];
    top.forEach((t, i) => assert.ok(Math.abs(Math.exp(t.logprob) - golden.nextTokenTop5.top[i]!.p) < 2e-3, `${t.token}`));
  });

  it("accepts a body sent with a form content type, as Ollama's curl examples do", async () => {
    const res = await fetch(`${server.url}/api/generate`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: JSON.stringify({ model: "stories260k", prompt: "Once", stream: false, options: { num_predict: 2 } }) });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { eval_count: number }).eval_count, 2);
    assert.equal(await (await fetch(`${server.url}/`)).text(), "Shimmy is running (Ollama API under /api, OpenAI API under /v1)");
  });
});

describe("Ollama API over Ollama's own store", () => {
  it("answers to the short name, and /api/tags carries the manifest's digest", async () => {
    const tmp = tempDir();
    const store = join(tmp.path, "ollama");
    const manifest = addOllamaModel(store, "registry.ollama.ai", "library", "stories", "latest", [{ mediaType: "model", file: STORIES_GGUF }]);
    const config = loadConfig({ threads: 1, gpu: false, port: 0, parallel: 1 }, { HOME: join(tmp.path, "home"), OLLAMA_MODELS: store });
    const own = await startServer(config, "test");
    try {
      const client = new Ollama({ host: own.url });
      // (A ./models folder in the working directory would be listed too.)
      const tag = (await client.list()).models.find((m) => m.name === "stories:latest");
      assert.ok(tag, "the store's model is listed by its Ollama name");
      assert.equal(tag.digest, createHash("sha256").update(readFileSync(manifest)).digest("hex"));
      const g = golden.greedy[0]!;
      const r = await client.generate({ model: "stories", prompt: g.prompt, options: greedy(g.maxTokens) });
      assert.equal(r.model, "stories:latest");
      assert.equal(r.response, g.text);
    } finally {
      await own.close();
      tmp.cleanup();
    }
  });
});
