import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RunningServer } from "../src/server/server.js";
import { postJson, readSse, startTestServer, until } from "./helpers/server.js";

const chat = (server: RunningServer, body: Record<string, unknown>) => postJson(`${server.url}/v1/chat/completions`, { temperature: 0, ...body });

async function health(server: RunningServer): Promise<any> {
  return (await fetch(`${server.url}/health`)).json();
}

/** Opens a streamed request and returns once its first chunk has arrived. */
async function openStream(server: RunningServer, body: Record<string, unknown>) {
  const controller = new AbortController();
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ temperature: 0, stream: true, ...body }),
    signal: controller.signal,
  });
  const reader = res.body!.getReader();
  await reader.read();
  return {
    abort: async () => {
      controller.abort();
      await reader.cancel().catch(() => undefined);
    },
    finish: async () => {
      let text = "";
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return text;
        text += decoder.decode(value);
      }
    },
  };
}

const prompts = ["Once upon a time", "Tom and Sue", "The little dog", "Lily wanted to"];

describe("batched slots", () => {
  it("4 concurrent streams each give exactly what they give alone (temperature 0)", async () => {
    const server = await startTestServer({ parallel: 4 });
    try {
      const alone: string[] = [];
      for (const p of prompts) alone.push((await chat(server, { model: "stories260k-chat", messages: [{ role: "user", content: p }], max_tokens: 40 })).json.choices[0].message.content);
      const together = await Promise.all(
        prompts.map(async (p) => {
          const res = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "stories260k-chat", messages: [{ role: "user", content: p }], max_tokens: 40, temperature: 0, stream: true }) });
          const { events } = await readSse(res);
          return events.map((e) => e.choices[0]?.delta?.content ?? "").join("");
        }),
      );
      assert.deepEqual(together, alone);
      const h = await health(server);
      assert.equal(h.loaded[0].slots, 4);
      assert.equal(h.loaded[0].context_per_slot, 512);
      // A chosen --threads 1: one-token steps timed on 1 thread only, no alternative.
      assert.equal(h.compute.threads_alternative, null);
      assert.equal(h.loaded[0].one_token_threads, 1);
      assert.deepEqual(Object.keys(h.loaded[0].one_token_step_ms), ["1"]);
      assert.ok(h.loaded[0].one_token_step_ms["1"] > 0);
    } finally {
      await server.close();
    }
  });
});

describe("fairness", () => {
  it("a request on a slot holding an old cache starts while other streams are generating", async () => {
    const server = await startTestServer({ parallel: 3 });
    try {
      const ask = (content: string, maxTokens: number) => chat(server, { model: "stories260k", messages: [{ role: "user", content }], max_tokens: maxTokens });
      const alone = (await ask("Lily wanted to", 6)).json.choices[0].message.content;
      // Every slot now holds a cache that a new prompt only partly shares: taking one means erasing.
      await Promise.all([ask("Tom and Sue", 8), ask("The little dog", 8), ask("Ben had a", 8)]);
      // Two long generations (end-of-text banned) keep every decode step busy…
      const longs = await Promise.all(
        ["Once upon a time", "The sun was"].map((content) => openStream(server, { model: "stories260k", messages: [{ role: "user", content }], max_tokens: 450, logit_bias: { "2": -100 } })),
      );
      let longsFinished = 0;
      const longTexts = longs.map((l) =>
        l.finish().then((text) => {
          longsFinished++;
          return text;
        }),
      );
      // …and must not keep a request on the third slot from starting (its cache erase has to wait
      // for a gap between two decode steps).
      const short = await ask("Lily wanted to", 6);
      assert.equal(longsFinished, 0, "the short request waited for the long generations to end");
      assert.equal(short.status, 200);
      assert.ok(short.json.usage.prompt_tokens_details.cached_tokens > 0, "it reused part of the slot's cache");
      assert.equal(short.json.choices[0].message.content, alone);
      for (const text of await Promise.all(longTexts)) assert.match(text, /data: \[DONE\]/);
    } finally {
      await server.close();
    }
  });
});

describe("queue", () => {
  it("past --max-queue answers 503 with Retry-After; a cancelled request frees its slot for a queued one", async () => {
    const server = await startTestServer({ parallel: 1, maxQueue: 1 });
    try {
      const long = { model: "stories260k", messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 1900 };
      const running = await openStream(server, long);
      // One request may wait…
      const queued = chat(server, { model: "stories260k", messages: [{ role: "user", content: "Tom and Sue" }], max_tokens: 5 });
      await until(async () => (await health(server)).loaded[0]?.queued === 1, "the second request to queue");
      // …the next one is refused with a hint when to retry.
      const refused = await chat(server, { model: "stories260k", messages: [{ role: "user", content: "x" }], max_tokens: 5 });
      assert.equal(refused.status, 503);
      assert.equal(refused.json.error.code, "server_busy");
      assert.match(refused.headers.get("retry-after") ?? "", /^\d+$/);
      assert.ok(Number(refused.headers.get("retry-after")) >= 1);
      const refusedStream = await chat(server, { model: "stories260k", messages: [{ role: "user", content: "x" }], max_tokens: 5, stream: true });
      assert.equal(refusedStream.status, 503, "a streamed request is refused with the status, not an in-band error");
      assert.equal(refusedStream.json.error.code, "server_busy");
      const slots: any = await (await fetch(`${server.url}/slots`)).json();
      assert.equal(slots.models[0].queued, 1);
      assert.equal(slots.models[0].slots[0].busy, true);
      // Cancelling the running one lets the queued one run.
      await running.abort();
      const done = await queued;
      assert.equal(done.status, 200);
      assert.equal(done.json.choices[0].finish_reason, "length");
    } finally {
      await server.close();
    }
  });

  it("a request past the per-request time limit gets 504", async () => {
    const server = await startTestServer({ parallel: 1, requestTimeoutMs: 300 });
    try {
      const r = await chat(server, { model: "stories260k", messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 2000 });
      assert.equal(r.status, 504, JSON.stringify(r.json));
      assert.equal(r.json.error.code, "timeout");
      assert.equal((await health(server)).in_flight, 0);
    } finally {
      await server.close();
    }
  });
});

describe("prefix reuse over HTTP", () => {
  it("a second chat turn reports cached tokens and matches a cold run", async () => {
    const server = await startTestServer({ parallel: 2 });
    try {
      const turn1 = [{ role: "system", content: "A short story." }, { role: "user", content: "Once upon a time" }];
      const first = await chat(server, { model: "stories260k-chat", messages: turn1, max_tokens: 10 });
      assert.equal(first.json.usage.prompt_tokens_details.cached_tokens, 0);
      const turn2 = [...turn1, { role: "assistant", content: first.json.choices[0].message.content }, { role: "user", content: " One day, she" }];
      const warm = await chat(server, { model: "stories260k-chat", messages: turn2, max_tokens: 15 });
      assert.ok(warm.json.usage.prompt_tokens_details.cached_tokens > 10, JSON.stringify(warm.json.usage));
      assert.equal(warm.json.timings.cache_n, warm.json.usage.prompt_tokens_details.cached_tokens);
      const cold = await startTestServer({ parallel: 1 });
      try {
        const c = await chat(cold, { model: "stories260k-chat", messages: turn2, max_tokens: 15 });
        assert.equal(c.json.usage.prompt_tokens_details.cached_tokens, 0);
        assert.equal(c.json.choices[0].message.content, warm.json.choices[0].message.content);
      } finally {
        await cold.close();
      }
    } finally {
      await server.close();
    }
  });
});

describe("model pool", () => {
  it("with one model allowed, alternating requests for two models both succeed", async () => {
    const server = await startTestServer({ maxLoadedModels: 1 });
    try {
      for (const model of ["stories260k", "stories260k-chat", "stories260k", "stories260k-chat"]) {
        const r = await chat(server, { model, messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 5 });
        assert.equal(r.status, 200);
        const h = await health(server);
        assert.deepEqual(h.loaded.map((m: { name: string }) => m.name), [model]);
      }
    } finally {
      await server.close();
    }
  });

  it("never unloads a model with a request in flight; the other model waits, then loads", async () => {
    const server = await startTestServer({ maxLoadedModels: 1, parallel: 1 });
    try {
      const a = await openStream(server, { model: "stories260k", messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 600 });
      const b = chat(server, { model: "stories260k-chat", messages: [{ role: "user", content: "Tom and Sue" }], max_tokens: 5 });
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual((await health(server)).loaded.map((m: { name: string }) => m.name), ["stories260k"], "A stays loaded while streaming");
      const streamed = await a.finish();
      assert.match(streamed, /"finish_reason":"length"/, "A ran to its end, not cut off");
      assert.equal((await b).status, 200);
      assert.deepEqual((await health(server)).loaded.map((m: { name: string }) => m.name), ["stories260k-chat"]);
    } finally {
      await server.close();
    }
  });

  it("keep-alive 0 unloads right after the request; a positive keep-alive unloads when idle", async () => {
    const zero = await startTestServer({ keepAliveMs: 0 });
    try {
      const r = await chat(zero, { model: "stories260k", messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 3 });
      assert.equal(r.status, 200);
      await until(async () => (await health(zero)).models.loaded === 0, "the model to unload");
    } finally {
      await zero.close();
    }
    const short = await startTestServer({ keepAliveMs: 300 });
    try {
      await chat(short, { model: "stories260k", messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 3 });
      const h = await health(short);
      assert.equal(h.models.loaded, 1);
      assert.ok(h.loaded[0].expires_at !== null);
      await until(async () => (await health(short)).models.loaded === 0, "the idle model to unload");
    } finally {
      await short.close();
    }
  });
});
