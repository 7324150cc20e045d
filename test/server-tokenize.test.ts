import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RunningServer } from "../src/server/server.js";
import { STORIES_GGUF } from "./helpers/paths.js";
import { golden, postJson, startTestServer } from "./helpers/server.js";

const CHAT_MODEL = "stories260k-chat";
const TEXT_MODEL = "stories260k";

type Piece = { id: number; piece: string | number[] };

const pieceBytes = (p: Piece): Buffer => (typeof p.piece === "string" ? Buffer.from(p.piece, "utf8") : Buffer.from(p.piece));

async function getJson(url: string): Promise<{ status: number; json: any }> {
  const res = await fetch(url);
  return { status: res.status, json: await res.json() };
}

function assertError(r: { status: number; json: any }, status: number, code: string, param: string | null): void {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(r.json.error.code, code, JSON.stringify(r.json));
  assert.equal(r.json.error.param, param, JSON.stringify(r.json));
}

describe("llama-server's /tokenize, /detokenize and /props", () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  const tokenize = (body: object) => postJson(`${server.url}/tokenize`, { model: TEXT_MODEL, ...body });
  const detokenize = (body: object) => postJson(`${server.url}/detokenize`, { model: TEXT_MODEL, ...body });

  it("tokenizes as llama.cpp does (golden ids), without BOS unless add_special", async () => {
    for (const { text, ids } of golden.tokenization) {
      const r = await tokenize({ content: text });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.deepEqual(r.json, { tokens: ids }, JSON.stringify(text));
    }
    const { prompt, promptIdsWithBos } = golden.greedy[0]!;
    assert.deepEqual((await tokenize({ content: prompt, add_special: true })).json.tokens, promptIdsWithBos);
  });

  it("parses special-token text unless parse_special is false", async () => {
    const bos = golden.greedy[0]!.promptIdsWithBos[0]!;
    const parsed = (await tokenize({ content: "<s>Hello world" })).json.tokens as number[];
    assert.deepEqual(parsed, [bos, ...golden.tokenization.find((t) => t.text === "Hello world")!.ids]);
    const literal = (await tokenize({ content: "<s>Hello world", parse_special: false })).json.tokens as number[];
    assert.ok(!literal.includes(bos), JSON.stringify(literal));
    assert.equal((await detokenize({ tokens: literal })).json.content, " <s>Hello world");
  });

  it("gives pieces: text where it is whole UTF-8, bytes where a token holds part of a character", async () => {
    const { text, ids } = golden.tokenization.find((t) => t.text === "naïve café 😀")!;
    const r = await tokenize({ content: text, with_pieces: true });
    const pieces = r.json.tokens as Piece[];
    assert.deepEqual(pieces.map((p) => p.id), ids);
    assert.ok(pieces.some((p) => Array.isArray(p.piece)), "byte-fallback tokens come as byte lists");
    assert.ok(pieces.every((p) => typeof p.piece === "string" ? !p.piece.includes("\uFFFD") : p.piece.every((b) => Number.isInteger(b) && b >= 0 && b < 256)));
    // SentencePiece puts a space before the text; the pieces are exactly its bytes.
    assert.equal(Buffer.concat(pieces.map(pieceBytes)).toString("utf8"), ` ${text}`);
  });

  it("detokenizes as llama-server does: the pieces joined", async () => {
    for (const { text, ids } of golden.tokenization.filter((t) => t.text !== "")) {
      const r = await detokenize({ tokens: ids });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.content, ` ${text}`, JSON.stringify(text));
    }
    assert.deepEqual((await detokenize({ tokens: [] })).json, { content: "" });
    assert.deepEqual((await detokenize({})).json, { content: "" }, "tokens may be left out, as in llama-server");
    const bos = golden.greedy[0]!.promptIdsWithBos[0]!;
    assert.equal((await detokenize({ tokens: [bos, ...golden.tokenization[0]!.ids] })).json.content, `<s> ${golden.tokenization[0]!.text}`, "special tokens written out");
  });

  it("refuses ids outside the vocabulary with a 400 (llama.cpp would abort the process)", async () => {
    assertError(await detokenize({ tokens: [346, 512] }), 400, "invalid_value", "tokens");
    assertError(await detokenize({ tokens: [-1] }), 400, "invalid_value", "tokens");
    assertError(await detokenize({ tokens: [1.5] }), 400, "invalid_value", "tokens[0]");
    assertError(await detokenize({ tokens: "346" }), 400, "invalid_value", "tokens");
    // Still serving.
    assert.equal((await detokenize({ tokens: [346] })).status, 200);
  });

  it("needs a model when several are served, and refuses unknown fields", async () => {
    assertError(await postJson(`${server.url}/tokenize`, { content: "x" }), 400, "missing_required_parameter", "model");
    assertError(await postJson(`${server.url}/detokenize`, { tokens: [1] }), 400, "missing_required_parameter", "model");
    assertError(await tokenize({ model: "no-such-model", content: "x" }), 404, "model_not_found", "model");
    assertError(await tokenize({ content: "x", add_eos: true }), 400, "unknown_parameter", "add_eos");
    assertError(await tokenize({}), 400, "missing_required_parameter", "content");
    assertError(await tokenize({ content: "x", with_pieces: "yes" }), 400, "invalid_value", "with_pieces");
  });

  it("/props describes the model as loaded", async () => {
    const models = (await getJson(`${server.url}/v1/models`)).json.data as { id: string; context_length: number }[];
    const { status, json: props } = await getJson(`${server.url}/props?model=${CHAT_MODEL}`);
    assert.equal(status, 200);
    assert.equal(props.model, CHAT_MODEL);
    assert.equal(props.total_slots, server.ctx.config.parallel);
    assert.equal(props.default_generation_settings.n_ctx, models.find((m) => m.id === CHAT_MODEL)!.context_length);
    assert.match(props.chat_template, /bos_token/);
    assert.equal(props.bos_token, "<s>");
    assert.equal(props.vocab_size, 512);
    assert.match(props.model_path, /stories260K-chat\.gguf$/);
    assert.equal((await getJson(`${server.url}/props?model=${TEXT_MODEL}`)).json.chat_template, null, "no template in the file");
    assertError(await getJson(`${server.url}/props`), 400, "missing_required_parameter", "model");
    assertError(await getJson(`${server.url}/props?model=${TEXT_MODEL}&autoload=false`), 400, "unknown_parameter", "autoload");
  });
});

describe("/tokenize with one model served", () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ modelPaths: [STORIES_GGUF] });
  });
  after(() => server.close());

  it("lets the model be left out", async () => {
    const r = await postJson(`${server.url}/tokenize`, { content: "x" });
    assert.deepEqual(r.json, { tokens: golden.tokenization.find((t) => t.text === "x")!.ids });
    assert.equal((await getJson(`${server.url}/props`)).json.model, TEXT_MODEL);
  });
});
