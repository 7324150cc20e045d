import assert from "node:assert/strict";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { readGguf } from "../src/formats/gguf.js";
import { readSafetensorsModel } from "../src/formats/safetensors.js";
import { runCli } from "./helpers/cli.js";
import { STORIES_HF, tempDir } from "./helpers/paths.js";

const home = tempDir();
after(() => home.cleanup());
const env = { HOME: home.path, SHIMMY_CACHE_DIR: join(home.path, "cache") };

describe("shimmy synth and the load sweep", () => {
  it("writes the benchmarks' GGUF of the asked size and type, deterministic by seed", () => {
    const r = runCli(["synth", "--size", "1m", "--type", "f16", "-o", join(home.path, "out"), "--json"], env);
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.ok, true);
    const gguf = readGguf(result.path);
    assert.equal(gguf.metadata.get("llama.block_count"), 4);
    assert.equal(gguf.metadata.get("llama.embedding_length"), 128);
    assert.equal(gguf.metadata.get("general.file_type"), 1); // MOSTLY_F16
    assert.equal(statSync(result.path).size, result.size_bytes);
    // The same seed finds the file already there.
    const again = JSON.parse(runCli(["synth", "--size", "1m", "--type", "f16", "-o", join(home.path, "out"), "--json"], env).stdout);
    assert.equal(again.path, result.path);
  });

  it("writes an HF folder with the given tokenizer, and refuses without one", () => {
    const r = runCli(["synth", "--size", "1m", "--format", "hf", "--tokenizer-from", STORIES_HF, "-o", join(home.path, "hf"), "--json"], env);
    assert.equal(r.status, 0, r.stderr);
    const { path } = JSON.parse(r.stdout);
    assert.deepEqual(readdirSync(path).sort(), ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]);
    assert.equal(readSafetensorsModel(path).tensors.get("model.embed_tokens.weight")?.dtype, "BF16");
    assert.ok(!readdirSync(join(home.path, "hf")).some((f) => f.includes(".partial")));
    const refused = runCli(["synth", "--format", "hf"], env);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /--format hf needs --tokenizer-from DIR/);
  });

  it("bench --load-sweep loads each size and reports measured load times", () => {
    const r = runCli(["bench", "--load-sweep", "--sweep-sizes", "1m", "--runs", "2", "--no-default-locations", "--json"], env);
    assert.equal(r.status, 0, r.stderr);
    const { load_sweep: rows, runs } = JSON.parse(r.stdout);
    assert.equal(runs, 2);
    assert.equal(rows.length, 1);
    assert.ok(existsSync(rows[0].path));
    assert.equal(rows[0].size_bytes, statSync(rows[0].path).size);
    assert.ok(rows[0].load_ms > 0 && rows[0].mb_per_second > 0, JSON.stringify(rows[0]));
    const unknown = runCli(["bench", "--load-sweep", "--sweep-sizes", "7m"], env);
    assert.notEqual(unknown.status, 0);
    assert.match(unknown.stderr, /unknown size 7m/);
  });
});
