import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GGML_TYPE } from "../src/formats/ggml-types.js";
import { readGguf } from "../src/formats/gguf.js";
import type { RunningServer } from "../src/server/server.js";
import { CLI } from "./helpers/cli.js";
import { u32 } from "./helpers/gguf-fixtures.js";
import { rewriteGguf } from "./helpers/gguf-rewrite.js";
import { REPO_ROOT, STORIES_GGUF, STORIES_HF, tempDir } from "./helpers/paths.js";
import { postJson, startTestServer } from "./helpers/server.js";

/**
 * Model files our reader accepts but llama.cpp aborts the process on (each checked to end an
 * unisolated `shimmy generate --no-isolation` with SIGABRT, below): two at load, one at the first
 * decode. Each is stories260K with one change.
 */
type Edit = Parameters<typeof rewriteGguf>[2];
const HOSTILE: Record<string, { says: string; edit: Edit }> = {
  // llama-model.cpp: GGML_ASSERT(hparams.n_layer_all > 0 && …) while reading hyperparameters.
  "no-layers": { says: "GGML_ASSERT(hparams.n_layer_all > 0", edit: (m) => void m.set("llama.block_count", u32(0)) },
  // llama-model-loader.cpp: GGML_ASSERT(t_meta.ne[dim] >= 1) when creating the K projection of 0 heads.
  "no-kv-heads": { says: "GGML_ASSERT(t_meta.ne[dim] >= 1)", edit: (m) => void m.set("llama.attention.head_count_kv", u32(0)) },
  // Loads fine; the CPU backend aborts in the first decode: an F16 norm weight meets F32 activations.
  "f16-norm": {
    says: "binary_op: unsupported types",
    edit: (_m, tensors) =>
      tensors.map((t) => (t.name === "blk.0.attn_norm.weight" ? { name: t.name, dims: t.dims, type: GGML_TYPE.F16, data: () => Buffer.alloc(t.dims[0]! * 2) } : t)),
  },
};
type Hostile = keyof typeof HOSTILE;
const NAMES = Object.keys(HOSTILE);

const tmp = tempDir("shimmy-isolation-");
const modelsDir = join(tmp.path, "models");
const cacheDir = join(tmp.path, "cache");
const verdictFile = join(cacheDir, "model-verdicts.json");
const fileOf = (name: string) => join(modelsDir, `${name}.gguf`);

async function start(paths = [STORIES_GGUF, ...NAMES.map(fileOf)]): Promise<RunningServer> {
  return startTestServer({ modelPaths: paths }, (c) => {
    c.cacheDir = cacheDir;
  });
}

async function health(server: RunningServer): Promise<{ status: string; isolation: { enabled: boolean; probes_run: number; unusable: { model: string; file: string; reason: string }[] } }> {
  const res = await fetch(`${server.url}/health`);
  assert.equal(res.status, 200);
  return (await res.json()) as never;
}

const chat = (server: RunningServer, model: string) => postJson(`${server.url}/v1/chat/completions`, { model, messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 8, temperature: 0 });

async function listed(server: RunningServer): Promise<{ openai: string[]; ollama: string[] }> {
  const openai = ((await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string }[] }).data.map((m) => m.id);
  const ollama = ((await (await fetch(`${server.url}/api/tags`)).json()) as { models: { name: string }[] }).models.map((m) => m.name);
  return { openai, ollama };
}

function assertRefused(r: { status: number; json: any }, name: Hostile): void {
  assert.equal(r.status, 400, JSON.stringify(r.json));
  assert.equal(r.json.error.code, "model_unusable");
  assert.equal(r.json.error.param, "model");
  assert.ok(r.json.error.message.includes(fileOf(name)), r.json.error.message);
  assert.ok(r.json.error.message.includes(`made llama.cpp end the process (SIGABRT): `), r.json.error.message);
  assert.ok(r.json.error.message.includes(HOSTILE[name]!.says), r.json.error.message);
}

before(async () => {
  mkdirSync(modelsDir, { recursive: true });
  for (const name of NAMES) await rewriteGguf(STORIES_GGUF, fileOf(name), HOSTILE[name]!.edit);
  // Our reader accepts every one of them: only llama.cpp falls over.
  for (const name of NAMES) assert.doesNotThrow(() => readGguf(fileOf(name)));
});
after(() => tmp.cleanup());

describe("crash isolation", () => {
  it("refuses model files that abort llama.cpp with its own message, and the server stays up", async () => {
    const server = await start();
    try {
      // Concurrent first requests share one probe.
      const first = await Promise.all([chat(server, "no-layers"), chat(server, "no-layers"), chat(server, "no-layers")]);
      for (const r of first) assertRefused(r, "no-layers");
      assert.equal((await health(server)).isolation.probes_run, 1);

      for (const name of NAMES) assertRefused(await chat(server, name), name);
      // The Ollama API says the same in its envelope; a known file is not probed again.
      const ollama = await postJson(`${server.url}/api/chat`, { model: "f16-norm", messages: [{ role: "user", content: "hi" }], stream: false });
      assert.equal(ollama.status, 400);
      assert.ok(ollama.json.error.includes(HOSTILE["f16-norm"]!.says), ollama.json.error);

      const good = await chat(server, "stories260k");
      assert.equal(good.status, 200, JSON.stringify(good.json));
      assert.ok(good.json.choices[0].message.content.length > 0);

      const h = await health(server);
      assert.equal(h.status, "ok");
      assert.equal(h.isolation.enabled, true);
      assert.equal(h.isolation.probes_run, NAMES.length + 1);
      assert.deepEqual(h.isolation.unusable.map((u) => u.model).sort(), [...NAMES].sort());
      for (const u of h.isolation.unusable) {
        assert.equal(u.file, fileOf(u.model));
        assert.ok(u.reason.includes(HOSTILE[u.model]!.says), u.reason);
      }
      assert.deepEqual(await listed(server), { openai: ["stories260k"], ollama: ["stories260k"] });
      const retrieve = await fetch(`${server.url}/v1/models/no-layers`);
      assert.equal(retrieve.status, 404);
    } finally {
      await server.close();
    }
  });

  it("caches verdicts: a second server refuses the same files without probing, and never lists them", async () => {
    const cached = JSON.parse(readFileSync(verdictFile, "utf8")) as { verdicts: Record<string, { file: string; ok: boolean; reason?: string }> };
    const byFile = new Map(Object.values(cached.verdicts).map((v) => [v.file, v]));
    // Verdicts name files by their real path (the models folder may be reached through a link).
    assert.equal(byFile.get(realpathSync(STORIES_GGUF))?.ok, true);
    for (const name of NAMES) assert.equal(byFile.get(realpathSync(fileOf(name)))?.ok, false);

    const server = await start();
    try {
      // Known before any request for them.
      assert.deepEqual((await listed(server)).openai, ["stories260k"]);
      for (const name of NAMES) assertRefused(await chat(server, name), name);
      assert.equal((await chat(server, "stories260k")).status, 200);
      assert.equal((await health(server)).isolation.probes_run, 0);

      // A changed file is a new file: probed again (this one now holds the good model's bytes).
      copyFileSync(STORIES_GGUF, fileOf("no-layers"));
      assert.ok((await listed(server)).openai.includes("no-layers"));
      const fixed = await chat(server, "no-layers");
      assert.equal(fixed.status, 200, JSON.stringify(fixed.json));
      const h = await health(server);
      assert.equal(h.isolation.probes_run, 1);
      assert.deepEqual(h.isolation.unusable.map((u) => u.model).sort(), ["f16-norm", "no-kv-heads"]);
    } finally {
      await server.close();
      await rewriteGguf(STORIES_GGUF, fileOf("no-layers"), HOSTILE["no-layers"]!.edit);
    }
  });

  it("probes converted SafeTensors models too, and a corrupt verdict cache is ignored and rewritten", async () => {
    writeFileSync(verdictFile, "{ not json");
    const server = await start([STORIES_HF]);
    try {
      const r = await chat(server, "stories260k/hf");
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal((await health(server)).isolation.probes_run, 1);
    } finally {
      await server.close();
    }
    const verdicts = Object.values((JSON.parse(readFileSync(verdictFile, "utf8")) as { verdicts: Record<string, { file: string; ok: boolean }> }).verdicts);
    assert.equal(verdicts.length, 1);
    assert.ok(verdicts[0]!.file.startsWith(join(cacheDir, "converted")), verdicts[0]!.file);
    assert.equal(verdicts[0]!.ok, true);
  });

  it("a draft model file that aborts llama.cpp is probed and left out; its target still answers", async () => {
    // no-kv-heads shares stories260K's vocabulary, so only its probe keeps it from being loaded beside it.
    const server = await startTestServer({ modelPaths: [STORIES_GGUF, fileOf("no-kv-heads")], speculative: "draft", draftModel: "no-kv-heads" }, (c) => {
      c.cacheDir = cacheDir;
    });
    try {
      const r = await chat(server, "stories260k");
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.ok(r.json.choices[0].message.content.length > 0);
      assert.equal(r.json.timings?.draft_n ?? 0, 0, "no drafts without the draft model");
      assert.equal((await health(server)).status, "ok");
    } finally {
      await server.close();
    }
  });

  it("the CLI reports the error; without isolation the same file ends the process", () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ["--import", "tsx", CLI, "generate", fileOf("f16-norm"), "-p", "Once", "-n", "2", "--no-default-locations", ...args], {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH, HOME: tmp.path, SHIMMY_CACHE_DIR: cacheDir, SHIMMY_THREADS: "1", SHIMMY_GPU: "off", SHIMMY_NATIVE: "0", NO_COLOR: "1", GGML_NO_BACKTRACE: "1" },
        encoding: "utf8",
        timeout: 120_000,
      });
    const isolated = run();
    assert.equal(isolated.status, 1, isolated.stderr);
    assert.match(isolated.stderr, /cannot be served: .*f16-norm\.gguf made llama\.cpp end the process \(SIGABRT\): .*binary_op: unsupported types/);
    const unisolated = run("--no-isolation");
    assert.equal(unisolated.signal, "SIGABRT", `${unisolated.status} ${unisolated.stderr}`);
  });
});
