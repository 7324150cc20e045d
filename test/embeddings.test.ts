import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { GgufValueType, readGguf } from "../src/formats/gguf.js";
import { type GgufWriteValue, writeGguf } from "../src/formats/gguf-writer.js";
import { PositionedReader } from "../src/formats/positioned-reader.js";
import type { RunningServer } from "../src/server/server.js";
import { LlamaReference } from "./helpers/llama-reference.js";
import { loadGguf } from "./helpers/llama-run.js";
import { STORIES_CHAT_GGUF, STORIES_GGUF, STORIES_HF, tempDir } from "./helpers/paths.js";
import { golden, postJson, startTestServer } from "./helpers/server.js";

const CTX = 512;
const reference = new LlamaReference(STORIES_HF);
const ONCE = golden.greedy.find((g) => g.prompt === "Once upon a time")!;
const TOM = golden.greedy.find((g) => g.prompt === "Tom and Sue")!;
const LONG_TEXT = "Once upon a time there was a little dog. ".repeat(60);

const norm = (v: ArrayLike<number>): number => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
const cosine = (a: ArrayLike<number>, b: ArrayLike<number>): number => Array.from(a).reduce((s, x, i) => s + x * b[i]!, 0) / (norm(a) * norm(b));
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i]!)));
const normalized = (v: ArrayLike<number>): number[] => Array.from(v, (x) => x / norm(v));

/** The reference vector for token ids: mean pooling, L2-normalised when the API normalises. */
function assertMatchesReference(actual: ArrayLike<number>, tokens: readonly number[], normalize: boolean): void {
  const pooled = reference.meanPooled(tokens);
  const expected = normalize ? normalized(pooled) : Array.from(pooled);
  assert.equal(actual.length, expected.length);
  assert.ok(cosine(actual, expected) > 0.9999, `cosine ${cosine(actual, expected)}`);
  assert.ok(maxAbsDiff(actual, expected) < (normalize ? 2e-3 : 2e-2), `max |Δ| ${maxAbsDiff(actual, expected)}`);
}

/** A copy of stories260K that declares mean pooling: what discovery calls an embedding model. */
async function writeEmbeddingOnlyCopy(path: string): Promise<void> {
  const source = readGguf(STORIES_CHAT_GGUF);
  const metadata = new Map<string, GgufWriteValue>();
  for (const [key, value] of source.metadata) {
    const { type, arrayType } = source.metadataTypes.get(key)!;
    metadata.set(key, (type === GgufValueType.ARRAY ? { type, arrayType, value } : { type, value }) as GgufWriteValue);
  }
  metadata.delete("tokenizer.chat_template");
  metadata.set("general.name", { type: GgufValueType.STRING, value: "stories260K-embed" });
  metadata.set("llama.pooling_type", { type: GgufValueType.UINT32, value: 1 });
  const reader = new PositionedReader(STORIES_CHAT_GGUF);
  try {
    await writeGguf(path, metadata, source.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, data: () => reader.readAt(source.dataOffset + t.offset, t.bytes) })));
  } finally {
    reader.close();
  }
}

let server: RunningServer;
let openai: OpenAI;
let ollama: Ollama;
const dir = tempDir();
const EMBED_ONLY = join(dir.path, "stories260K-embed.gguf");

before(async () => {
  await writeEmbeddingOnlyCopy(EMBED_ONLY);
  server = await startTestServer({ modelPaths: [STORIES_GGUF, STORIES_CHAT_GGUF, EMBED_ONLY], ctxSize: CTX });
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "none" });
  ollama = new Ollama({ host: server.url });
});
after(async () => {
  await server.close();
  dir.cleanup();
});

describe("embeddings", () => {
  it("the float64 reference forward pass reproduces llama.cpp's next-token probabilities (golden.json)", () => {
    const p = reference.nextTokenProbabilities(golden.nextTokenTop5.promptIdsWithBos);
    for (const { id, p: expected } of golden.nextTokenTop5.top) assert.ok(Math.abs(p[id]! - expected) < 2e-3, `token ${id}: ${p[id]} vs ${expected}`);
  });

  it("/v1/embeddings through the openai SDK: mean-pooled, L2-normalised vectors equal to the reference; real usage", async () => {
    const res = await openai.embeddings.create({ model: "stories260k", input: [ONCE.prompt, TOM.prompt], encoding_format: "float" });
    assert.equal(res.object, "list");
    assert.equal(res.model, "stories260k");
    assert.deepEqual(res.data.map((d) => [d.object, d.index]), [["embedding", 0], ["embedding", 1]]);
    assertMatchesReference(res.data[0]!.embedding, ONCE.promptIdsWithBos, true);
    assertMatchesReference(res.data[1]!.embedding, TOM.promptIdsWithBos, true);
    for (const d of res.data) assert.ok(Math.abs(norm(d.embedding) - 1) < 1e-6);
    const tokens = ONCE.promptIdsWithBos.length + TOM.promptIdsWithBos.length;
    assert.deepEqual(res.usage, { prompt_tokens: tokens, total_tokens: tokens });
  });

  it("the SDK's default base64 encoding decodes to the float vectors; token-id input equals text input", async () => {
    const floats = await openai.embeddings.create({ model: "stories260k", input: ONCE.prompt, encoding_format: "float" });
    const viaBase64 = await openai.embeddings.create({ model: "stories260k", input: ONCE.prompt });
    const raw = await postJson(`${server.url}/v1/embeddings`, { model: "stories260k", input: ONCE.prompt, encoding_format: "base64" });
    assert.equal(typeof raw.json.data[0].embedding, "string");
    const expected32 = Array.from(Float32Array.from(floats.data[0]!.embedding));
    assert.deepEqual(viaBase64.data[0]!.embedding, expected32);
    const byIds = await openai.embeddings.create({ model: "stories260k", input: [ONCE.promptIdsWithBos], encoding_format: "float" });
    assert.deepEqual(byIds.data[0]!.embedding, floats.data[0]!.embedding);
    const flatIds = await openai.embeddings.create({ model: "stories260k", input: ONCE.promptIdsWithBos, encoding_format: "float" });
    assert.deepEqual(flatIds.data[0]!.embedding, floats.data[0]!.embedding);
  });

  it("a batch equals its inputs one by one; identical inputs give identical vectors", async () => {
    const inputs = [ONCE.prompt, TOM.prompt, ONCE.prompt, "The cat sat on the mat."];
    const batch = await openai.embeddings.create({ model: "stories260k", input: inputs, encoding_format: "float" });
    const single = await Promise.all(inputs.map((input) => openai.embeddings.create({ model: "stories260k", input, encoding_format: "float" })));
    batch.data.forEach((d, i) => assert.deepEqual(d.embedding, single[i]!.data[0]!.embedding));
    assert.deepEqual(batch.data[0]!.embedding, batch.data[2]!.embedding);
    assert.ok(cosine(batch.data[0]!.embedding, batch.data[1]!.embedding) < 0.999, "different texts give different vectors");
  });

  it("ollama SDK: embed (normalised, as /v1) and the legacy embeddings (the raw pooled vector)", async () => {
    const res = await ollama.embed({ model: "stories260k", input: [ONCE.prompt, TOM.prompt] });
    assert.equal(res.model, "stories260k");
    assert.equal(res.embeddings.length, 2);
    assertMatchesReference(res.embeddings[0]!, ONCE.promptIdsWithBos, true);
    assertMatchesReference(res.embeddings[1]!, TOM.promptIdsWithBos, true);
    assert.equal(res.prompt_eval_count, ONCE.promptIdsWithBos.length + TOM.promptIdsWithBos.length);
    assert.ok(res.total_duration > 0 && res.total_duration >= res.load_duration);
    const one = await ollama.embed({ model: "stories260k:latest", input: ONCE.prompt });
    assert.deepEqual(one.embeddings[0], res.embeddings[0]);
    const legacy = await ollama.embeddings({ model: "stories260k", prompt: ONCE.prompt });
    assertMatchesReference(legacy.embedding, ONCE.promptIdsWithBos, false);
    assert.ok(norm(legacy.embedding) > 1.5, "the legacy route does not normalise");
  });

  it("an input longer than the context: 400 context_length_exceeded, or cut to the context with Ollama's truncate", async () => {
    const tooLong = await postJson(`${server.url}/v1/embeddings`, { model: "stories260k", input: ["short", LONG_TEXT] });
    assert.equal(tooLong.status, 400);
    assert.equal(tooLong.json.error.code, "context_length_exceeded");
    assert.equal(tooLong.json.error.param, "input");
    assert.match(tooLong.json.error.message, /input 1 is \d+ tokens, but the model's context holds 512/);

    const cut = await ollama.embed({ model: "stories260k", input: LONG_TEXT });
    assert.equal(cut.prompt_eval_count, CTX);
    const firstTokens = (await postJson(`${server.url}/api/embed`, { model: "stories260k", input: LONG_TEXT, options: { num_ctx: 8 } })).json;
    assert.equal(firstTokens.prompt_eval_count, 8);
    const longTokens = await postJson(`${server.url}/v1/embeddings`, { model: "stories260k", input: [[1, ...Array.from({ length: CTX + 10 }, () => 403)]] });
    assert.equal(longTokens.status, 400);
    assert.equal(longTokens.json.error.code, "context_length_exceeded");

    const refused = await postJson(`${server.url}/api/embed`, { model: "stories260k", input: LONG_TEXT, truncate: false });
    assert.equal(refused.status, 400);
    assert.match(refused.json.error, /context holds 512/);
  });

  it("a cut input embeds exactly its first context-size tokens", async () => {
    const model = await loadGguf(STORIES_GGUF);
    const ids = [1, ...model.tokenize(LONG_TEXT)];
    await model.dispose();
    assert.ok(ids.length > CTX);
    const cut = await ollama.embed({ model: "stories260k", input: LONG_TEXT });
    const first = await openai.embeddings.create({ model: "stories260k", input: [ids.slice(0, CTX)], encoding_format: "float" });
    assert.deepEqual(cut.embeddings[0], first.data[0]!.embedding);
    assertMatchesReference(first.data[0]!.embedding, ids.slice(0, CTX), true);
  });

  it("a huge input (1 MB) is refused without tokenizing, or cut to what truncation keeps, with the same vector as the cut text", async () => {
    const huge = LONG_TEXT.repeat(Math.ceil(1_000_000 / LONG_TEXT.length));
    const refused = await postJson(`${server.url}/v1/embeddings`, { model: "stories260k", input: huge });
    assert.equal(refused.status, 400);
    assert.equal(refused.json.error.code, "context_length_exceeded");
    const cut = await ollama.embed({ model: "stories260k", input: huge });
    assert.equal(cut.prompt_eval_count, CTX);
    assert.deepEqual(cut.embeddings[0], (await ollama.embed({ model: "stories260k", input: LONG_TEXT })).embeddings[0]);
  });

  it("refuses dimensions other than the model's, empty input and token ids outside the vocabulary (400, before any work)", async () => {
    const dims = await postJson(`${server.url}/v1/embeddings`, { model: "stories260k", input: "hi", dimensions: 32 });
    assert.equal(dims.status, 400);
    assert.equal(dims.json.error.param, "dimensions");
    assert.match(dims.json.error.message, /64-dimensional/);
    const same = await openai.embeddings.create({ model: "stories260k", input: "hi", dimensions: 64, encoding_format: "float" });
    assert.equal(same.data[0]!.embedding.length, 64);
    const ollamaDims = await postJson(`${server.url}/api/embed`, { model: "stories260k", input: "hi", dimensions: 8 });
    assert.equal(ollamaDims.status, 400);

    for (const input of ["", [], ["a", ""], [[]]]) {
      const r = await postJson(`${server.url}/v1/embeddings`, { model: "stories260k", input });
      assert.equal(r.status, 400, JSON.stringify(input));
      assert.match(r.json.error.message, /nothing to embed|no input/);
    }
    const emptyOllama = await postJson(`${server.url}/api/embeddings`, { model: "stories260k", prompt: "" });
    assert.equal(emptyOllama.status, 400);
    const outside = await postJson(`${server.url}/v1/embeddings`, { model: "stories260k", input: [1, 512] });
    assert.equal(outside.status, 400);
    assert.match(outside.json.error.message, /token id 512, outside the vocabulary/);
    const unknown = await postJson(`${server.url}/v1/embeddings`, { model: "stories260k", input: "hi", encoding_format: "int8" });
    assert.equal(unknown.status, 400);
    const missing = await postJson(`${server.url}/v1/embeddings`, { model: "nope", input: "hi" });
    assert.equal(missing.status, 404);
  });

  it("an embedding-only model: listed with the embedding capability, embeds with the pooling its metadata declares, refuses generation", async () => {
    const listed = (await openai.models.list()).data.find((m) => m.id === "stories260k-embed") as unknown as { capabilities: string[] };
    assert.deepEqual(listed.capabilities, ["embedding"]);
    assert.deepEqual((await ollama.show({ model: "stories260k-embed" })).capabilities, ["embedding"]);

    const res = await openai.embeddings.create({ model: "stories260k-embed", input: ONCE.prompt, encoding_format: "float" });
    assertMatchesReference(res.data[0]!.embedding, ONCE.promptIdsWithBos, true);

    const chat = await postJson(`${server.url}/v1/chat/completions`, { model: "stories260k-embed", messages: [{ role: "user", content: "hi" }] });
    assert.equal(chat.status, 400);
    assert.equal(chat.json.error.code, "model_unusable");
    assert.match(chat.json.error.message, /embedding model: it serves \/v1\/embeddings/);
    const generate = await postJson(`${server.url}/api/generate`, { model: "stories260k-embed", prompt: "hi" });
    assert.equal(generate.status, 400);
  });

  it("an embedding request is answered while a long generation on the same model is still running", async () => {
    const stream = await openai.completions.create({ model: "stories260k", prompt: "Once", max_tokens: CTX - 4, temperature: 0, stream: true });
    let chunks = 0;
    let busyAfterEmbedding: boolean | undefined;
    for await (const _chunk of stream) {
      if (++chunks !== 2) continue;
      const res = await openai.embeddings.create({ model: "stories260k", input: TOM.prompt, encoding_format: "float" });
      assertMatchesReference(res.data[0]!.embedding, TOM.promptIdsWithBos, true);
      const slots = (await (await fetch(`${server.url}/slots`)).json()) as { models: { model: string; slots: { busy: boolean }[] }[] };
      busyAfterEmbedding = slots.models.find((m) => m.model === "stories260k")!.slots.some((s) => s.busy);
    }
    assert.equal(busyAfterEmbedding, true, "the embedding came back while the generation still held its slot");
    assert.ok(chunks > 10);
  });
});
