import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RunningServer } from "../src/server/server.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GgufValueType, readGguf } from "../src/formats/gguf.js";
import { type GgufWriteValue, writeGguf } from "../src/formats/gguf-writer.js";
import { STORIES_GGUF, tempDir } from "./helpers/paths.js";
import { postJson, startTestServer } from "./helpers/server.js";

let server: RunningServer;
let chatUrl: string;
let completionsUrl: string;

before(async () => {
  server = await startTestServer({ parallel: 1 }, (c) => {
    c.bodyLimit = 64 * 1024;
  });
  chatUrl = `${server.url}/v1/chat/completions`;
  completionsUrl = `${server.url}/v1/completions`;
});
after(async () => {
  await server.close();
});

const userMsg = [{ role: "user", content: "Once upon a time" }];

/** Every error is OpenAI's envelope with a message, a type, a param and a code. */
function assertEnvelope(json: any, param: string | null, code: string | null): void {
  assert.equal(typeof json.error?.message, "string", JSON.stringify(json));
  assert.ok(json.error.message.length > 0);
  assert.equal(typeof json.error.type, "string");
  assert.equal(json.error.param, param, JSON.stringify(json));
  assert.equal(json.error.code, code, JSON.stringify(json));
  assert.ok(!/\n\s+at /.test(json.error.message), "no stack trace");
}

describe("bad input on /v1/chat/completions", () => {
  const cases: [string, unknown, number, string | null, string | null][] = [
    ["invalid JSON", "{bad", 400, null, "invalid_json"],
    ["missing messages", { model: "stories260k-chat" }, 400, "messages", "missing_required_parameter"],
    ["missing model", { messages: userMsg }, 400, "model", "missing_required_parameter"],
    ["empty messages", { model: "stories260k-chat", messages: [] }, 400, "messages", "invalid_value"],
    ["wrong type", { model: "stories260k-chat", messages: userMsg, temperature: "hot" }, 400, "temperature", "invalid_value"],
    ["string for a number is not coerced", { model: "stories260k-chat", messages: userMsg, max_tokens: "5" }, 400, "max_tokens", "invalid_value"],
    ["out of range", { model: "stories260k-chat", messages: userMsg, top_p: 1.5 }, 400, "top_p", "invalid_value"],
    ["max_tokens 0", { model: "stories260k-chat", messages: userMsg, max_tokens: 0 }, 400, "max_tokens", "invalid_value"],
    ["bad role", { model: "stories260k-chat", messages: [{ role: "wizard", content: "x" }] }, 400, "messages[0].role", "invalid_value"],
    ["unknown parameter", { model: "stories260k-chat", messages: userMsg, frobnicate: true }, 400, "frobnicate", "unknown_parameter"],
    ["top_logprobs without logprobs", { model: "stories260k-chat", messages: userMsg, top_logprobs: 2 }, 400, "top_logprobs", null],
    ["top_logprobs above 20", { model: "stories260k-chat", messages: userMsg, logprobs: true, top_logprobs: 21 }, 400, "top_logprobs", "invalid_value"],
    ["n above the slots", { model: "stories260k-chat", messages: userMsg, n: 2 }, 400, "n", "invalid_value"],
    ["tool_choice naming an unknown function", { model: "stories260k-chat", messages: userMsg, tools: [{ type: "function", function: { name: "f" } }], tool_choice: { type: "function", function: { name: "g" } } }, 400, "tool_choice", null],
    ["response_format of an unknown type", { model: "stories260k-chat", messages: userMsg, response_format: { type: "xml" } }, 400, "response_format.type", "invalid_value"],
    ["ignore_eos", { model: "stories260k-chat", messages: userMsg, ignore_eos: true }, 400, "ignore_eos", "unsupported_parameter"],
    ["image part", { model: "stories260k-chat", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AA==" } }] }] }, 400, "messages[0].content[0]", "unsupported_content"],
    ["stream_options without stream", { model: "stories260k-chat", messages: userMsg, stream_options: { include_usage: true } }, 400, "stream_options", null],
    ["logit_bias outside the vocabulary", { model: "stories260k-chat", messages: userMsg, logit_bias: { "99999": 5 } }, 400, "logit_bias", "invalid_value"],
    ["unknown model", { model: "nope", messages: userMsg }, 404, "model", "model_not_found"],
  ];
  for (const [name, body, status, param, code] of cases) {
    it(`${name} → ${status}`, async () => {
      const r = await postJson(chatUrl, body);
      assert.equal(r.status, status, JSON.stringify(r.json));
      assertEnvelope(r.json, param, code);
    });
  }

  it("context overflow → 400 context_length_exceeded with the counts", async () => {
    const long = "Once upon a time ".repeat(200);
    const r = await postJson(chatUrl, { model: "stories260k-chat", messages: [{ role: "user", content: long }] });
    assert.equal(r.status, 400);
    assertEnvelope(r.json, "messages", "context_length_exceeded");
    assert.match(r.json.error.message, /maximum context length is 512 tokens\. However, your messages resulted in \d+ tokens/);
  });

  it("oversized body → 413", async () => {
    const r = await postJson(chatUrl, { model: "stories260k-chat", messages: [{ role: "user", content: "x".repeat(100 * 1024) }] });
    assert.equal(r.status, 413);
    assertEnvelope(r.json, null, "request_too_large");
  });

  it("unknown route → 404 in the same envelope", async () => {
    const r = await postJson(`${server.url}/v1/nothing`, {});
    assert.equal(r.status, 404);
    assertEnvelope(r.json, null, "not_found");
  });

  it("a streamed request that fails validation gets a JSON error, not a stream", async () => {
    const r = await postJson(chatUrl, { model: "nope", messages: userMsg, stream: true });
    assert.equal(r.status, 404);
    assert.match(r.headers.get("content-type")!, /application\/json/);
  });
});

describe("bad input on /v1/completions", () => {
  it("suffix is refused until supported; array prompts of more than one are refused", async () => {
    const s = await postJson(completionsUrl, { model: "stories260k", prompt: "a", suffix: "b" });
    assert.equal(s.status, 400);
    assertEnvelope(s.json, "suffix", "unsupported_parameter");
    const many = await postJson(completionsUrl, { model: "stories260k", prompt: ["a", "b"] });
    assert.equal(many.status, 400);
    assert.equal(many.json.error.param, "prompt");
    const wrong = await postJson(completionsUrl, { model: "stories260k", prompt: 42 });
    assert.equal(wrong.status, 400);
  });
});

describe("cancellation", () => {
  it("a client disconnecting mid-stream frees the model for the next request", async () => {
    // parallel = 1: the next request can only run once the aborted one has released the slot.
    const controller = new AbortController();
    const res = await fetch(chatUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "stories260k-chat", messages: userMsg, stream: true, temperature: 0, max_tokens: 500 }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.ok(!first.done);
    controller.abort();
    await reader.cancel().catch(() => undefined);
    const next = await postJson(chatUrl, { model: "stories260k-chat", messages: userMsg, temperature: 0, max_tokens: 5 });
    assert.equal(next.status, 200);
    assert.equal(next.json.choices[0].finish_reason, "length");
    const health: any = await (await fetch(`${server.url}/health`)).json();
    assert.equal(health.in_flight, 0);
    assert.equal(health.loaded.find((m: { name: string }) => m.name === "stories260k-chat").busy_slots, 0);
  });
});

describe("chat template errors", () => {
  it("a conversation the template rejects is a 400 naming messages, not a 500", async () => {
    // A template that, like Mistral's, only accepts alternating user/assistant turns.
    const dir = tempDir("shimmy-tpl-");
    try {
      const src = readGguf(STORIES_GGUF);
      // A copy of stories260K with a strict template (same tensors, metadata kept with their types).
      const meta = new Map([...src.metadataTypes].map(([k, t]) => [k, { ...t, value: src.metadata.get(k) } as GgufWriteValue]));
      meta.set("tokenizer.chat_template", { type: GgufValueType.STRING, value: "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System messages are not supported') }}{% endif %}{{ m['content'] }}{% endfor %}" });
      const data = readFileSync(STORIES_GGUF);
      await writeGguf(join(dir.path, "strict.gguf"), meta, src.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, data: () => data.subarray(src.dataOffset + t.offset, src.dataOffset + t.offset + t.bytes) })));
      const s = await startTestServer({ modelPaths: [join(dir.path, "strict.gguf")] });
      try {
        const ok = await postJson(`${s.url}/v1/chat/completions`, { model: "strict", messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 3 });
        assert.equal(ok.status, 200);
        const r = await postJson(`${s.url}/v1/chat/completions`, { model: "strict", messages: [{ role: "system", content: "x" }, { role: "user", content: "y" }] });
        assert.equal(r.status, 400);
        assertEnvelope(r.json, "messages", "invalid_value");
        assert.match(r.json.error.message, /System messages are not supported/);
      } finally {
        await s.close();
      }
    } finally {
      dir.cleanup();
    }
  });
});
