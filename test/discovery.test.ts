import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadConfig, splitPathList } from "../src/config/config.js";
import { discoverModels } from "../src/discovery/discover.js";
import type { ModelSpec } from "../src/discovery/types.js";
import { Registry } from "../src/registry/registry.js";
import { createModelPool } from "../src/engine/create-pool.js";
import { servableModels } from "../src/engine/servability.js";
import { copyHfFolder } from "./helpers/hf-fixtures.js";
import { addOllamaModel, sha256File } from "./helpers/ollama-store.js";
import { str, u32, writeLoraGguf, writeTinyLlamaGguf, f32Tensor } from "./helpers/gguf-fixtures.js";
import { STORIES_CHAT_GGUF, STORIES_GGUF, STORIES_HF, tempDir } from "./helpers/paths.js";

const tmp = tempDir();
after(() => tmp.cleanup());
const home = join(tmp.path, "home");
const hub = join(tmp.path, "hf-hub");
const ollama = join(tmp.path, "ollama-models");
const modelsDir = join(tmp.path, "work", "models");
const extraDir = join(tmp.path, "extra");

function mk(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}

/** A real HF hub cache layout: blobs named by hash, snapshots symlinking into them, refs/main. */
function hfRepo(repoDir: string, rev: string, files: Record<string, string>): void {
  const snap = mk(join(hub, repoDir, "snapshots", rev));
  mk(join(hub, repoDir, "blobs"));
  for (const [name, source] of Object.entries(files)) {
    const digest = sha256File(source);
    const blob = join(hub, repoDir, "blobs", digest);
    copyFileSync(source, blob);
    mk(dirname(join(snap, name)));
    symlinkSync(blob, join(snap, name));
  }
}

const ollamaModel = (host: string, ns: string, model: string, tag: string, layers: { mediaType: string; file: string }[]): string => addOllamaModel(ollama, host, ns, model, tag, layers);

let models: ModelSpec[];
let result: ReturnType<typeof discoverModels>;
const byName = (name: string): ModelSpec => {
  const m = models.find((x) => x.name === name);
  assert.ok(m, `model ${name} not found; have ${models.map((x) => x.name).join(", ")}`);
  return m;
};

before(async () => {
  mk(home);
  // HF cache: one single-GGUF repo (with a stale snapshot refs/main does not point to), one repo
  // with two GGUFs, one SafeTensors repo.
  hfRepo("models--TheOrg--Stories-GGUF", "aaaa1111", { "stories260K.gguf": STORIES_GGUF });
  hfRepo("models--TheOrg--Stories-GGUF", "0000old0", { "stale.gguf": STORIES_CHAT_GGUF });
  mk(join(hub, "models--TheOrg--Stories-GGUF", "refs"));
  writeFileSync(join(hub, "models--TheOrg--Stories-GGUF", "refs", "main"), "aaaa1111");
  hfRepo("models--multi--Pack", "bbbb2222", { "a.gguf": STORIES_GGUF, "sub/b.gguf": STORIES_CHAT_GGUF });
  hfRepo("models--meta--tiny-llama-hf", "cccc3333", {
    "config.json": join(STORIES_HF, "config.json"),
    "model.safetensors": join(STORIES_HF, "model.safetensors"),
    "tokenizer.json": join(STORIES_HF, "tokenizer.json"),
    "tokenizer_config.json": join(STORIES_HF, "tokenizer_config.json"),
  });

  // Ollama: library model, namespaced model with an adapter layer, hf.co model.
  const lora = join(tmp.path, "lora-for-stories.gguf");
  await writeLoraGguf(lora);
  ollamaModel("registry.ollama.ai", "library", "stories", "latest", [{ mediaType: "model", file: STORIES_CHAT_GGUF }, { mediaType: "license", file: STORIES_HF + "/config.json" }]);
  ollamaModel("registry.ollama.ai", "someone", "storyteller", "q8", [{ mediaType: "model", file: STORIES_GGUF }, { mediaType: "adapter", file: lora }]);
  ollamaModel("hf.co", "user", "repo-gguf", "F32", [{ mediaType: "model", file: STORIES_GGUF }]);

  // LM Studio.
  const lms = mk(join(home, ".lmstudio", "models", "publisher", "repo"));
  await writeTinyLlamaGguf(join(lms, "lmstudio-model.gguf"), { "general.name": str("lmstudio-only") });

  // ./models: split model, LoRA pair, corrupt file, projector, vocab-only, duplicate via symlink.
  mk(modelsDir);
  const meta = { "split.count": { type: 2, value: 2 } as const, "general.name": str("bigsplit") };
  await writeTinyLlamaGguf(join(modelsDir, "Big-Model-00001-of-00002.gguf"), meta as never, [f32Tensor("token_embd.weight", [8, 16])]);
  await writeTinyLlamaGguf(join(modelsDir, "Big-Model-00002-of-00002.gguf"), {}, [f32Tensor("output_norm.weight", [8])]);
  await writeTinyLlamaGguf(join(modelsDir, "Broken-00001-of-00003.gguf"));
  const pair = mk(join(modelsDir, "pair"));
  await writeTinyLlamaGguf(join(pair, "base.gguf"), { "general.name": str("Tiny Base") });
  await writeLoraGguf(join(pair, "my-adapter.gguf"), { "general.base_model.0.name": str("Tiny Base") });
  await writeLoraGguf(join(pair, "orphan-adapter.gguf"), { "general.architecture": str("qwen2") });
  writeFileSync(join(modelsDir, "corrupt.gguf"), Buffer.concat([Buffer.from("GGUF"), Buffer.from([3, 0, 0, 0]), Buffer.alloc(5)]));
  await writeTinyLlamaGguf(join(modelsDir, "mmproj-vision.gguf"), { "general.architecture": str("clip") });
  await writeTinyLlamaGguf(join(modelsDir, "vocab-only.gguf"), {}, []);
  symlinkSync(join(pair, "base.gguf"), join(modelsDir, "base-link.gguf"));

  // An extra dir (via SHIMMY_MODEL_PATHS) with a name that collides with ./models.
  mk(extraDir);
  await writeTinyLlamaGguf(join(extraDir, "Collide.gguf"), { "llama.context_length": u32(64) });
  mk(join(modelsDir, "deeper"));
  await writeTinyLlamaGguf(join(modelsDir, "deeper", "collide.gguf"));

  const env = { HOME: home, HF_HUB_CACHE: hub, OLLAMA_MODELS: ollama, SHIMMY_MODEL_PATHS: `${extraDir};${join(tmp.path, "missing")}` };
  result = discoverModels(loadConfig({}, env), join(tmp.path, "work"));
  models = result.models;
});

describe("discovery sources", () => {
  it("looks in every documented place and says so", () => {
    const where = result.locations.map((l) => `${l.source}:${l.path}:${l.exists}`);
    assert.ok(where.includes(`dir:${extraDir}:true`));
    assert.ok(where.includes(`dir:${join(tmp.path, "missing")}:false`));
    assert.ok(where.includes(`dir:${modelsDir}:true`));
    assert.ok(where.includes(`ollama:${ollama}:true`));
    assert.ok(where.includes(`hf-cache:${hub}:true`));
    assert.ok(where.includes(`lmstudio:${join(home, ".lmstudio", "models")}:true`));
  });

  it("names HF cache repos org/repo, following refs/main", () => {
    const m = byName("theorg/stories-gguf");
    assert.equal(m.source, "hf-cache");
    assert.match(m.files[0]!, /snapshots\/aaaa1111\/stories260K\.gguf$/);
    assert.ok(m.aliases.includes("TheOrg/Stories-GGUF"));
    assert.ok(!models.some((x) => x.files[0]!.includes("0000old0")), "stale snapshot must be ignored");
    assert.ok(byName("multi/pack/a"));
    assert.ok(byName("multi/pack/b"));
  });

  it("lists HF SafeTensors snapshots as safetensors models", () => {
    const m = byName("meta/tiny-llama-hf");
    assert.equal(m.format, "safetensors");
    assert.equal(m.architecture, "LlamaForCausalLM");
    assert.equal(m.parameters, 260032);
  });

  it("reads Ollama manifests and names models as Ollama shows them", () => {
    const lib = byName("stories:latest");
    assert.equal(lib.source, "ollama");
    assert.match(lib.files[0]!, /blobs\/sha256-[0-9a-f]{64}$/);
    assert.ok(lib.aliases.includes("stories"));
    assert.ok(lib.aliases.includes("registry.ollama.ai/library/stories:latest"));
    assert.match(lib.digest!, /^[0-9a-f]{64}$/);
    assert.equal(lib.summary?.hasChatTemplate, true);
    const ns = byName("someone/storyteller:q8");
    assert.match(ns.lora!, /blobs\/sha256-/, "the adapter layer pairs with its model");
    assert.ok(byName("hf.co/user/repo-gguf:F32"));
  });

  it("finds LM Studio models", () => {
    assert.equal(byName("lmstudio-model").source, "lmstudio");
  });

  it("splits SHIMMY_MODEL_PATHS on ';' and the platform delimiter", () => {
    assert.deepEqual(splitPathList("/a;/b:/c"), ["/a", "/b", "/c"]);
    assert.deepEqual(splitPathList(" /a ; "), ["/a"]);
  });
});

describe("assembling the model list", () => {
  it("groups split GGUF parts into one model", () => {
    const m = byName("big-model");
    assert.equal(m.files.length, 2);
    assert.ok(!models.some((x) => x.files[0]!.includes("00002-of-00002")));
    assert.equal(m.parameters, 8 * 16 + 8);
    const broken = byName("broken");
    assert.match(broken.error!, /split part 2 of 3 is missing/);
  });

  it("serves one file reached twice as one model with both paths as aliases", () => {
    const base = byName("base");
    assert.ok(base.aliases.some((a) => a.endsWith("base-link.gguf")));
    assert.ok(!models.some((m) => m.name === "base-link"));
    // HF blobs copied from the same bytes are different files, so they stay separate models.
  });

  it("pairs a LoRA adapter with its base by metadata, and leaves an orphan unpaired", () => {
    const adapter = byName("my-adapter");
    assert.equal(adapter.lora, join(modelsDir, "pair", "my-adapter.gguf"));
    assert.deepEqual(adapter.files, byName("base").files);
    assert.deepEqual(adapter.capabilities, ["completion", "chat"]);
    const orphan = byName("orphan-adapter");
    assert.equal(orphan.lora, undefined);
    assert.deepEqual(orphan.capabilities, []);
    assert.match(orphan.note!, /no unambiguous base/);
  });

  it("lists corrupt files as unusable with their error, never throwing", () => {
    const bad = byName("corrupt");
    assert.match(bad.error!, /corrupt\.gguf: .*truncated/);
    assert.deepEqual(bad.capabilities, []);
  });

  it("does not serve projectors or vocab-only files as chat models", () => {
    assert.deepEqual(byName("mmproj-vision").capabilities, []);
    assert.equal(byName("mmproj-vision").summary?.kind, "projector");
    assert.deepEqual(byName("vocab-only").capabilities, []);
    assert.equal(byName("vocab-only").summary?.kind, "vocab-only");
  });

  it("gives colliding names a source prefix, deterministically", () => {
    assert.ok(byName("collide"));
    assert.ok(byName("dir/collide"));
    const again = discoverModels(loadConfig({}, { HOME: home, HF_HUB_CACHE: hub, OLLAMA_MODELS: ollama, SHIMMY_MODEL_PATHS: extraDir }), join(tmp.path, "work"));
    assert.deepEqual(again.models.map((m) => m.name), models.map((m) => m.name));
    assert.equal(new Set(models.map((m) => m.name.toLowerCase())).size, models.length, "names are unique");
  });

  it("takes SHIMMY_BASE_GGUF with SHIMMY_LORA_GGUF as one model with an adapter", () => {
    const env = { HOME: home, SHIMMY_BASE_GGUF: join(modelsDir, "pair", "base.gguf"), SHIMMY_LORA_GGUF: join(modelsDir, "pair", "my-adapter.gguf") };
    const r = discoverModels(loadConfig({ scanDefaultLocations: false }, env), tmp.path);
    assert.equal(r.models.length, 1);
    assert.equal(r.models[0]!.name, "base");
    assert.equal(r.models[0]!.source, "env");
    assert.equal(r.models[0]!.lora, env.SHIMMY_LORA_GGUF);
    const notLora = discoverModels(loadConfig({ scanDefaultLocations: false }, { ...env, SHIMMY_LORA_GGUF: STORIES_GGUF }), tmp.path);
    assert.match(notLora.models[0]!.error!, /is not a LoRA adapter/);
  });
});

describe("registry", () => {
  it("finds models by name (case-insensitively), path or alias; an unknown name offers what /v1/models lists", async () => {
    // A SafeTensors folder of an architecture Shimmy cannot convert: found, listed, not servable.
    const unconvertible = join(tmp.path, "more-models");
    copyHfFolder(STORIES_HF, join(unconvertible, "gpt2-folder"), { config: { architectures: ["GPT2LMHeadModel"], model_type: "gpt2" } });
    const config = loadConfig({ modelDirs: [modelsDir, unconvertible], scanDefaultLocations: false }, { HOME: home });
    const reg = new Registry(config, tmp.path);
    assert.equal(reg.find("BIG-MODEL")?.name, "big-model");
    assert.equal(reg.find(join(modelsDir, "base-link.gguf"))?.name, "base");
    assert.equal(reg.find("nope"), undefined);
    // An unknown name offers exactly what /v1/models lists: no corrupt file, projector, orphan
    // adapter or unconvertible folder.
    const servable = servableModels(reg.all()).map((m) => m.name);
    assert.ok(servable.includes("big-model"));
    assert.ok(!servable.some((n) => /mmproj-vision|corrupt/.test(n)));
    assert.ok(["orphan-adapter", "gpt2-folder"].every((name) => reg.all().some((m) => m.name === name) && !servable.includes(name)));
    // Discovery itself says so, so `discover`, `list` and the demo rule agree with serve.
    const gpt2 = reg.find("gpt2-folder")!;
    assert.deepEqual(gpt2.capabilities, []);
    assert.match(gpt2.note ?? "", /architecture GPT2LMHeadModel cannot be converted yet; supported: LlamaForCausalLM/);
    const pool = createModelPool(config, reg);
    try {
      assert.throws(() => pool.resolve("nope"), { name: "ModelNotFoundError", message: `model "nope" not found; available: ${servable.slice(0, 20).join(", ")}` });
    } finally {
      await pool.close();
    }
  });
});
