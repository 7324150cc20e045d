import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import type { RunningServer } from "../src/server/server.js";
import { runCli } from "./helpers/cli.js";
import { MODELS_DIR, QWEN_HF, STORIES_GGUF, STORIES_HF, tempDir } from "./helpers/paths.js";
import { startTestServer } from "./helpers/server.js";

const qwenGolden = JSON.parse(readFileSync(join(MODELS_DIR, "tiny-qwen2", "golden.json"), "utf8"));
const tmp = tempDir();
let server: RunningServer;
let client: OpenAI;

before(async () => {
  server = await startTestServer({ modelPaths: [QWEN_HF, STORIES_HF] }, (c) => {
    c.cacheDir = join(tmp.path, "cache");
  });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  await server.close();
  tmp.cleanup();
});

describe("serving Hugging Face SafeTensors folders", () => {
  it("lists them as models before anything is converted", async () => {
    const ids = (await client.models.list()).data.map((m) => m.id).sort();
    assert.deepEqual(ids, ["stories260k/hf", "tiny-qwen2/hf"]);
    const qwen = (await client.models.retrieve("tiny-qwen2/hf")) as unknown as { context_length: number; meta: { format: string; architecture: string } };
    assert.equal(qwen.meta.format, "safetensors");
    assert.equal(qwen.meta.architecture, "Qwen2ForCausalLM");
    assert.equal(qwen.context_length, 1024);
    assert.ok(!existsSync(join(tmp.path, "cache", "converted")), "nothing converted yet");
  });

  it("answers the golden chat exactly, converting on first use (openai SDK)", async () => {
    const chat = qwenGolden.chat;
    const r = await client.chat.completions.create({ model: "tiny-qwen2/hf", messages: chat.messages, temperature: 0, max_tokens: chat.maxTokens });
    assert.equal(r.usage!.prompt_tokens, chat.renderedIds.length, "the model's own ChatML template, tokenized as the reference");
    assert.equal(r.choices[0]!.message.content, chat.text);
    assert.equal(r.choices[0]!.finish_reason, "stop", "stopped by <|im_end|>");
    assert.equal(r.usage!.completion_tokens, chat.ids.length - 1, "the end-of-turn token is not content");
    assert.equal(readdirSync(join(tmp.path, "cache", "converted")).filter((f) => f.endsWith(".gguf")).length, 1);
  });

  it("serves the converted stories model with golden greedy text through /v1/completions", async () => {
    const r = await client.completions.create({ model: "stories260k/hf", prompt: "Once upon a time", max_tokens: 30, temperature: 0 });
    assert.equal(r.choices[0]!.text, ", there was a little girl named Lily. She loved to play outside in the park. One day,");
  });

  it("reuses the cache on a second server start", async () => {
    const before = readdirSync(join(tmp.path, "cache", "converted")).sort();
    const second = await startTestServer({ modelPaths: [QWEN_HF] }, (c) => {
      c.cacheDir = join(tmp.path, "cache");
    });
    try {
      const r = await fetch(`${second.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "tiny-qwen2/hf", prompt: "Once upon a time", max_tokens: 32, temperature: 0 }) });
      const body = (await r.json()) as { choices: { text: string }[] };
      assert.equal(body.choices[0]!.text, qwenGolden.greedy[0].text);
    } finally {
      await second.close();
    }
    assert.deepEqual(readdirSync(join(tmp.path, "cache", "converted")).sort(), before);
  });
});

describe("shimmy convert", () => {
  it("writes -o, refuses to overwrite without --force, and reports JSON", () => {
    const outFile = join(tmp.path, "out.gguf");
    const env = { HOME: tmp.path, SHIMMY_CACHE_DIR: join(tmp.path, "cli-cache") };
    const first = runCli(["convert", QWEN_HF, "-o", outFile, "--type", "q8_0", "--json"], env);
    assert.equal(first.status, 0, first.stderr + first.stdout);
    const r = JSON.parse(first.stdout);
    assert.equal(r.ok, true);
    assert.equal(r.type, "q8_0");
    assert.equal(r.architecture, "qwen2");
    const again = runCli(["convert", QWEN_HF, "-o", outFile], env);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /exists; pass --force/);
    const cached = JSON.parse(runCli(["convert", QWEN_HF, "--json"], env).stdout);
    assert.equal(cached.cached, false);
    assert.equal(JSON.parse(runCli(["convert", QWEN_HF, "--json"], env).stdout).cached, true);
    const bad = runCli(["convert", join(MODELS_DIR, "stories260K"), "-o", join(tmp.path, "x.gguf")], env);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /config\.json/);
    // A name that matches nothing offers the SafeTensors models found, not the GGUF ones.
    const unknown = runCli(["convert", "no-such-model", "--model-path", QWEN_HF, STORIES_GGUF, "--no-default-locations"], env);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /model "no-such-model" not found; available: \S*qwen\S*\n$/);
  });

  it("probe and generate work on a SafeTensors folder", () => {
    const env = { HOME: tmp.path, SHIMMY_CACHE_DIR: join(tmp.path, "cli-cache") };
    const probe = JSON.parse(runCli(["probe", STORIES_HF, "--no-default-locations", "--json"], env).stdout);
    assert.equal(probe.ok, true);
    assert.equal(probe.first_token, 403);
    const gen = JSON.parse(runCli(["generate", QWEN_HF, "-p", "Once upon a time", "-n", "32", "-t", "0", "--no-default-locations", "--json"], env).stdout);
    assert.deepEqual(gen.token_ids, qwenGolden.greedy[0].ids);
  });
});
