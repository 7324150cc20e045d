import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runCli } from "./helpers/cli.js";
import { STORIES_CHAT_GGUF, STORIES_GGUF, STORIES_HF, tempDir } from "./helpers/paths.js";

const tmp = tempDir();
after(() => tmp.cleanup());
const home = join(tmp.path, "home");
mkdirSync(home);
const models = join(tmp.path, "models");
mkdirSync(models);
copyFileSync(STORIES_GGUF, join(models, "Stories260K.gguf"));
copyFileSync(STORIES_CHAT_GGUF, join(models, "stories260K-chat.gguf"));
writeFileSync(join(models, "broken.gguf"), "GGUF\x03\x00\x00\x00");
const env = { HOME: home };
const base = ["--model-dirs", models, "--no-default-locations"];

describe("shimmy discover / list / inspect", () => {
  it("discover --json describes every model and where it looked", () => {
    const r = runCli(["discover", ...base, "--json"], env);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const names = out.models.map((m: { name: string }) => m.name);
    assert.deepEqual(names, ["broken", "stories260k-chat", "stories260k"]);
    const chat = out.models.find((m: { name: string }) => m.name === "stories260k-chat");
    assert.equal(chat.format, "gguf");
    assert.equal(chat.architecture, "llama");
    assert.equal(chat.parameters, 292800);
    assert.equal(chat.quantization, "F32");
    assert.equal(chat.context_length, 512);
    assert.equal(chat.chat_template, true);
    assert.equal(chat.usable, true);
    assert.equal(chat.size_bytes, 1185664);
    const broken = out.models.find((m: { name: string }) => m.name === "broken");
    assert.equal(broken.usable, false);
    assert.match(broken.error, /broken\.gguf/);
    assert.deepEqual(out.locations, [{ source: "dir", path: models, exists: true }]);
  });

  it("discover prints a readable report", () => {
    const r = runCli(["discover", ...base], env);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /stories260k-chat {2}\[gguf, generative\]/);
    assert.match(r.stdout, /unusable: .*broken\.gguf/);
    assert.match(r.stdout, /2 servable of 3 found/);
    assert.ok(!r.stdout.includes("\u001b["), "no colours without a TTY");
  });

  it("list --short prints servable names; list --json the same data", () => {
    const short = runCli(["list", ...base, "--short"], env);
    assert.deepEqual(short.stdout.trim().split("\n"), ["stories260k-chat", "stories260k"]);
    const json = JSON.parse(runCli(["list", ...base, "--json"], env).stdout);
    assert.equal(json.length, 3);
    const table = runCli(["list", ...base], env).stdout;
    assert.match(table, /^NAME +FORMAT +ARCH/m);
    assert.match(table, /stories260k +gguf +llama +292\.8K +F32/);
  });

  it("inspect shows metadata, tensors, template and tokenizer", () => {
    const r = runCli(["inspect", "stories260k-chat", ...base, "--json"], env);
    assert.equal(r.status, 0, r.stderr);
    const rep = JSON.parse(r.stdout);
    assert.equal(rep.tokenizer.kind, "llama");
    assert.equal(rep.tokenizer.vocabSize, 512);
    assert.equal(rep.tensors.count, 48);
    assert.equal(rep.tensors.byType.F32.count, 48);
    assert.match(rep.chatTemplate, /bos_token/);
    assert.deepEqual(rep.metadata["tokenizer.ggml.tokens"].length, 512);
    assert.equal(rep.metadata["tokenizer.ggml.tokens"].first[1], "<s>");
    assert.deepEqual(rep.errors, []);
  });

  it("inspect works on an HF folder path and reports a corrupt file with exit 1", () => {
    const hf = JSON.parse(runCli(["inspect", STORIES_HF, ...base, "--json"], env).stdout);
    assert.equal(hf.format, "safetensors");
    assert.equal(hf.summary.architecture, "LlamaForCausalLM");
    assert.equal(hf.tokenizer.kind, "llama");
    assert.equal(hf.tensors.count, 47);
    const bad = runCli(["inspect", "broken", ...base], env);
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /error .*broken\.gguf/);
    const none = runCli(["inspect", "nope", ...base], env);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /no model named "nope"/);
  });
});

describe("shimmy probe", () => {
  it("loads the real stories260K model and evaluates one token", () => {
    const r = runCli(["probe", "stories260k", ...base, "--json"], env);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout);
    assert.equal(out.ok, true);
    assert.equal(out.threads, 1);
    assert.equal(out.first_token, 403); // greedy after BOS: "▁Once" (golden fromBos200)
    assert.ok(out.load_ms >= 0);
  });

  it("fails with the real error and a non-zero exit for a broken model", () => {
    const r = runCli(["probe", "broken", ...base], env);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /broken: failed: .*broken\.gguf/);
  });
});
