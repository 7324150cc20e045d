import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import type { RunningServer } from "../src/server/server.js";
import { golden, postJson, readSse, startTestServer } from "./helpers/server.js";

let server: RunningServer;
let client: OpenAI;

before(async () => {
  server = await startTestServer();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  await server.close();
});

describe("models and health", () => {
  it("lists servable models with context length and capabilities (openai SDK)", async () => {
    const page = await client.models.list();
    const ids = page.data.map((m) => m.id).sort();
    assert.deepEqual(ids, ["stories260k", "stories260k-chat"]);
    const chat = page.data.find((m) => m.id === "stories260k-chat") as unknown as { object: string; owned_by: string; context_length: number; capabilities: string[]; created: number };
    assert.equal(chat.object, "model");
    assert.equal(chat.owned_by, "shimmy");
    assert.equal(chat.context_length, 512);
    assert.deepEqual(chat.capabilities, ["completion", "chat"]);
    assert.ok(Number.isInteger(chat.created) && chat.created > 1_600_000_000);
    const plain = page.data.find((m) => m.id === "stories260k") as unknown as { context_length: number };
    assert.equal(plain.context_length, 2048);
  });

  it("retrieves one model and 404s an unknown one", async () => {
    const m = await client.models.retrieve("stories260k");
    assert.equal(m.id, "stories260k");
    await assert.rejects(client.models.retrieve("nope"), (e: InstanceType<typeof OpenAI.NotFoundError>) => e.status === 404 && (e.error as { code?: string }).code === "model_not_found");
  });

  it("reports real uptime and model counts on /health", async () => {
    const a: any = await (await fetch(`${server.url}/health`)).json();
    await new Promise((r) => setTimeout(r, 250));
    const b: any = await (await fetch(`${server.url}/health`)).json();
    assert.equal(a.status, "ok");
    assert.equal(a.version, "test");
    assert.ok(b.uptime_seconds > a.uptime_seconds, "uptime advances");
    assert.equal(a.models.available, 2);
    assert.equal(typeof a.models.loaded, "number");
  });
});

describe("/v1/completions", () => {
  for (const g of golden.greedy.filter((x) => x.prompt === "Once upon a time")) {
    it(`greedy "${g.prompt}" for ${g.maxTokens} tokens equals golden.json`, async () => {
      const r = await client.completions.create({ model: "stories260k", prompt: g.prompt, max_tokens: g.maxTokens, temperature: 0 });
      assert.equal(r.object, "text_completion");
      assert.equal(r.choices[0]!.text, g.text);
      assert.equal(r.choices[0]!.finish_reason, "length");
      assert.equal(r.usage!.prompt_tokens, g.promptIdsWithBos.length);
      assert.equal(r.usage!.completion_tokens, g.ids.length);
      assert.equal(r.usage!.total_tokens, g.promptIdsWithBos.length + g.ids.length);
    });
  }

  it("keeps the leading space of the first generated piece", async () => {
    const g = golden.greedy.find((x) => x.prompt === "Tom and Sue")!;
    const r = await client.completions.create({ model: "stories260k", prompt: g.prompt, max_tokens: g.maxTokens, temperature: 0 });
    // golden.json records LlamaCompletion's text, which drops the space; prompt + text must be the full text.
    assert.equal(r.choices[0]!.text, ` ${g.text}`);
  });

  it("streams chunks that add up to the non-streamed text, with usage", async () => {
    const stream = await client.completions.create({ model: "stories260k", prompt: "Once upon a time", max_tokens: 30, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined | null;
    let finish: string | null = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, "text_completion");
      if (chunk.choices[0]) {
        text += chunk.choices[0].text;
        finish = chunk.choices[0].finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, golden.greedy[0]!.text);
    assert.equal(finish, "length");
    assert.equal(usage?.completion_tokens, 30);
  });

  it("echoes the prompt when asked", async () => {
    const r = await client.completions.create({ model: "stories260k", prompt: "Once upon a time", max_tokens: 5, temperature: 0, echo: true });
    assert.ok(r.choices[0]!.text.startsWith("Once upon a time, there"));
  });

  it("stops at a stop string without emitting it", async () => {
    const r = await client.completions.create({ model: "stories260k", prompt: "Once upon a time", max_tokens: 60, temperature: 0, stop: [" Lily", "park"] });
    assert.equal(r.choices[0]!.text, ", there was a little girl named");
    assert.equal(r.choices[0]!.finish_reason, "stop");
    // The stop string completes on the last token max_tokens allows: still a stop, not a length.
    const last = await client.completions.create({ model: "stories260k", prompt: "Once upon a time", max_tokens: 10, temperature: 0, stop: [" Lily"] });
    assert.equal(last.choices[0]!.text, ", there was a little girl named");
    assert.equal(last.choices[0]!.finish_reason, "stop");
    assert.equal(last.usage!.completion_tokens, 10);
  });

  it("bans a token with logit_bias -100", async () => {
    const r = await client.completions.create({ model: "stories260k", prompt: "Once upon a time", max_tokens: 5, temperature: 0, logit_bias: { "432": -100 } });
    assert.ok(!r.choices[0]!.text.startsWith(","), r.choices[0]!.text);
    assert.ok(r.choices[0]!.text.startsWith(" there"), "the runner-up token (golden top-2) wins");
  });

  it("applies logit_bias to the end-of-text token too", async () => {
    // Token 2 is stories260K's EOS, which greedy decoding never picks here; +100 makes it win at once.
    const r = await client.completions.create({ model: "stories260k", prompt: "Once upon a time", max_tokens: 20, temperature: 0, logit_bias: { "2": 100 } });
    assert.equal(r.choices[0]!.finish_reason, "stop");
    assert.equal(r.usage!.completion_tokens, 0);
    assert.equal(r.choices[0]!.text, "");
  });
});

describe("/v1/chat/completions", () => {
  it("answers with the model's chat template and real usage (openai SDK)", async () => {
    const r = await client.chat.completions.create({ model: "stories260k-chat", messages: golden.chat.messages, max_tokens: 12, temperature: 0 });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices[0]!.message.role, "assistant");
    assert.equal(typeof r.choices[0]!.message.content, "string");
    assert.ok(r.choices[0]!.message.content!.length > 0);
    assert.equal(r.choices[0]!.finish_reason, "length");
    // The prompt is the golden rendering of these messages, so its token count is known exactly.
    assert.equal(r.usage!.prompt_tokens, golden.chat.renderedIds.length);
    assert.equal(r.usage!.completion_tokens, 12);
    assert.match(r.id, /^chatcmpl-/);
  });

  it("streams: one id, role first, content deltas, finish chunk, usage chunk, [DONE]", async () => {
    const body = { model: "stories260k-chat", messages: golden.chat.messages, max_tokens: 12, temperature: 0 };
    const full = await client.chat.completions.create(body);
    const res = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^text\/event-stream/);
    const { events, done } = await readSse(res);
    assert.ok(done, "ends with data: [DONE]");
    assert.ok(events.every((e) => e.object === "chat.completion.chunk"));
    assert.equal(new Set(events.map((e) => e.id)).size, 1, "one stable id");
    assert.deepEqual(events[0].choices[0].delta, { role: "assistant", content: "" });
    const contentChunks = events.slice(1).filter((e) => e.choices.length > 0 && e.choices[0].delta.content !== undefined);
    assert.ok(contentChunks.every((e) => e.choices[0].delta.role === undefined));
    assert.equal(contentChunks.map((e) => e.choices[0].delta.content).join(""), full.choices[0]!.message.content);
    const finish = events.find((e) => e.choices.length > 0 && e.choices[0].finish_reason !== null);
    assert.equal(finish.choices[0].finish_reason, "length");
    assert.deepEqual(finish.choices[0].delta, {});
    const usage = events[events.length - 1];
    assert.deepEqual(usage.choices, []);
    assert.equal(usage.usage.prompt_tokens, golden.chat.renderedIds.length);
    assert.equal(usage.usage.completion_tokens, 12);
  });

  it("streams through the openai SDK", async () => {
    const stream = await client.chat.completions.create({ model: "stories260k-chat", messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 8, temperature: 0, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    assert.equal(text, ", there was a little girl"); // golden ids: "girl" is three tokens
  });

  it("frames streamed events as HTTP/1.1 chunks and keeps the connection for the next request", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    const post = (body: object) =>
      new Promise<{ headers: http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
        const req = http.request(`${server.url}/v1/completions`, { method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
          sockets.add(res.socket);
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => (text += d));
          res.on("end", () => resolve({ headers: res.headers, text }));
        });
        req.on("error", reject);
        req.end(JSON.stringify(body));
      });
    try {
      const g = golden.greedy[0]!;
      const streamed = await post({ model: "stories260k", prompt: g.prompt, max_tokens: g.maxTokens, temperature: 0, stream: true });
      assert.equal(streamed.headers["transfer-encoding"], "chunked");
      const events = streamed.text.split("\n\n").filter((b) => b.startsWith("data: "));
      assert.equal(events.at(-1), "data: [DONE]");
      assert.equal(events.slice(0, -1).map((e) => JSON.parse(e.slice(6)).choices[0].text).join(""), g.text);
      const plain = await post({ model: "stories260k", prompt: g.prompt, max_tokens: g.maxTokens, temperature: 0 });
      assert.equal(JSON.parse(plain.text).choices[0].text, g.text);
      assert.equal(sockets.size, 1, "the second request reused the streamed one's connection");
    } finally {
      agent.destroy();
    }
  });

  it("streams to an HTTP/1.0 client as a plain body that ends with the connection", async () => {
    const { port } = new URL(server.url);
    const body = JSON.stringify({ model: "stories260k", prompt: golden.greedy[0]!.prompt, max_tokens: 4, temperature: 0, stream: true });
    const raw = await new Promise<string>((resolve, reject) => {
      let text = "";
      const socket = net.connect(Number(port), "127.0.0.1", () => socket.write(`POST /v1/completions HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`));
      socket.setEncoding("utf8");
      socket.on("data", (d: string) => (text += d));
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    const [head, payload] = [raw.slice(0, raw.indexOf("\r\n\r\n")), raw.slice(raw.indexOf("\r\n\r\n") + 4)];
    assert.match(head, /^HTTP\/1\.1 200/);
    assert.doesNotMatch(head, /transfer-encoding/i);
    assert.ok(payload.startsWith("data: {"), payload.slice(0, 40));
    assert.ok(payload.endsWith("data: [DONE]\n\n"));
    assert.equal(payload.split("\n\n").filter((b) => b.startsWith("data: {")).length, 5, "4 tokens and the finish chunk");
  });

  it("accepts text content parts and the developer role", async () => {
    const r = await client.chat.completions.create({
      model: "stories260k-chat",
      messages: [{ role: "developer", content: "A story." }, { role: "user", content: [{ type: "text", text: "Once upon " }, { type: "text", text: "a time" }] }],
      max_tokens: 3,
      temperature: 0,
    });
    assert.equal(r.choices[0]!.finish_reason, "length");
  });

  it("is reproducible with a seed and deterministic at temperature 0", async () => {
    const ask = (seed: number) => client.chat.completions.create({ model: "stories260k-chat", messages: [{ role: "user", content: "Tom and Sue" }], max_tokens: 25, temperature: 1, seed });
    const [a, b] = [await ask(42), await ask(42)];
    assert.equal(a.choices[0]!.message.content, b.choices[0]!.message.content);
    const others = await Promise.all([1, 2, 3].map((s) => ask(s)));
    assert.ok(others.some((o) => o.choices[0]!.message.content !== a.choices[0]!.message.content), "different seeds sample differently");
    const greedy = () => client.chat.completions.create({ model: "stories260k-chat", messages: [{ role: "user", content: "Tom and Sue" }], max_tokens: 25, temperature: 0 });
    assert.equal((await greedy()).choices[0]!.message.content, (await greedy()).choices[0]!.message.content);
  });

  it("applies frequency and presence penalties (output changes, still valid)", async () => {
    const base = { model: "stories260k-chat", messages: [{ role: "user" as const, content: "Once upon a time" }], max_tokens: 60, temperature: 0 };
    const plain = await client.chat.completions.create(base);
    const penalised = await client.chat.completions.create({ ...base, frequency_penalty: 2, presence_penalty: 2 });
    assert.notEqual(penalised.choices[0]!.message.content, plain.choices[0]!.message.content);
  });
});

describe("log-probabilities, n, and fields clients send", () => {
  const top5 = golden.nextTokenTop5.top;

  it("completions logprobs: the model's own distribution, whatever the sampling filters (golden top-5)", async () => {
    for (const sampling of [{ temperature: 0 }, { temperature: 1, top_k: 1, seed: 3 }]) {
      const r: any = await client.completions.create({ model: "stories260k", prompt: golden.greedy[0]!.prompt, max_tokens: 1, logprobs: 5, ...sampling } as any);
      const lp = r.choices[0].logprobs;
      assert.equal(lp.tokens[0], ",");
      assert.deepEqual(lp.text_offset, [0]);
      const alternatives = Object.entries(lp.top_logprobs[0]) as [string, number][];
      assert.equal(alternatives.length, 5);
      alternatives.forEach(([, logprob], i) => assert.ok(Math.abs(Math.exp(logprob) - top5[i]!.p) < 2e-3, `alternative ${i}: ${Math.exp(logprob)} vs ${top5[i]!.p}`));
      assert.ok(Math.abs(Math.exp(lp.token_logprobs[0]) - top5[0]!.p) < 2e-3);
    }
  });

  it("chat logprobs: one entry per token, texts concatenate to the content, streamed the same", async () => {
    const request = { model: "stories260k-chat", messages: [{ role: "user" as const, content: "Once upon a time" }], max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 3 };
    const r = await client.chat.completions.create(request);
    const entries = r.choices[0]!.logprobs!.content!;
    assert.equal(entries.length, r.usage!.completion_tokens);
    assert.equal(entries.map((e) => e.token).join(""), r.choices[0]!.message.content);
    for (const e of entries) {
      assert.ok(e.logprob <= 0);
      assert.equal(e.top_logprobs.length, 3);
      assert.equal(e.top_logprobs[0]!.token, e.token, "greedy picks the most likely token");
      assert.deepEqual(e.bytes, [...Buffer.from(e.token, "utf8")]);
    }
    let streamed: typeof entries = [];
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) streamed = streamed.concat(chunk.choices[0]?.logprobs?.content ?? []);
    assert.deepEqual(streamed, entries);
  });

  it("n choices: each its own sequence, seeded seed + i, usage summed", async () => {
    const ask = (n: number, seed: number) => client.chat.completions.create({ model: "stories260k-chat", messages: [{ role: "user", content: "Tom and Sue" }], max_tokens: 10, temperature: 1, seed, n });
    const two = await ask(2, 40);
    assert.deepEqual(two.choices.map((c) => c.index), [0, 1]);
    assert.equal(two.choices[0]!.message.content, (await ask(1, 40)).choices[0]!.message.content);
    assert.equal(two.choices[1]!.message.content, (await ask(1, 41)).choices[0]!.message.content);
    assert.equal(two.usage!.completion_tokens, 20);
    const chunks: { index: number; text: string }[] = [];
    for await (const c of await client.chat.completions.create({ model: "stories260k-chat", messages: [{ role: "user", content: "Tom and Sue" }], max_tokens: 10, temperature: 1, seed: 40, n: 2, stream: true })) {
      for (const choice of c.choices) chunks.push({ index: choice.index, text: choice.delta.content ?? "" });
    }
    for (const i of [0, 1]) assert.equal(chunks.filter((c) => c.index === i).map((c) => c.text).join(""), two.choices[i]!.message.content);
  });

  it("accepts null for optional fields and the fields real clients send, honouring n_predict", async () => {
    const r = await postJson(`${server.url}/v1/chat/completions`, {
      model: "stories260k-chat",
      messages: [{ role: "user", content: "Once upon a time" }],
      temperature: null,
      top_p: null,
      user: null,
      seed: null,
      stop: null,
      n_predict: 3,
      prompt_cache_key: "k",
      safety_identifier: "s",
      verbosity: "low",
      metadata: { a: "b" },
      store: false,
      service_tier: "auto",
      cache_prompt: true,
      id_slot: -1,
      samplers: ["penalties", "top_k", "top_p", "min_p", "temperature"],
      reasoning_effort: "low",
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.usage.completion_tokens, 3);
    const reordered = await postJson(`${server.url}/v1/chat/completions`, { model: "stories260k-chat", messages: [{ role: "user", content: "x" }], samplers: ["temperature", "top_k"] });
    assert.equal(reordered.status, 400);
    assert.equal(reordered.json.error.param, "samplers");
  });
});
