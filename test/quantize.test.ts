import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { encode } from "../src/convert/quantize.js";
import { readGguf, readGgufTensorData } from "../src/formats/gguf.js";
import { runCli } from "./helpers/cli.js";
import { greedy, loadGguf } from "./helpers/llama-run.js";
import { STORIES_GGUF, tempDir } from "./helpers/paths.js";
import { golden } from "./helpers/server.js";

const tmp = tempDir();
after(() => tmp.cleanup());


describe("shimmy quantize", () => {
  const output = join(tmp.path, "stories-q8_0.gguf");

  it("re-encodes an F32 GGUF as Q8_0: metadata kept, each tensor as the converter's encoder writes it", () => {
    const r = runCli(["quantize", STORIES_GGUF, output, "--type", "q8_0", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).ok, true);
    const before = readGguf(STORIES_GGUF);
    const after = readGguf(output);
    for (const [key, value] of before.metadata) if (key !== "general.file_type") assert.deepEqual(after.metadata.get(key), value, key);
    assert.equal(after.metadata.get("general.file_type"), 7);
    assert.equal(after.tensors.length, before.tensors.length);
    const types = new Set<string>();
    for (const [i, t] of before.tensors.entries()) {
      const out = after.tensors[i]!;
      assert.equal(out.name, t.name);
      assert.deepEqual(out.dims, t.dims);
      const source = readGgufTensorData(before, t);
      const values = new Float32Array(source.buffer, source.byteOffset, t.elements);
      // 1-D stays F32; rows that are not whole 32-value blocks fall back to F16, as in `shimmy convert`.
      const type = t.dims.length === 1 ? "f32" : t.dims[0]! % 32 === 0 ? "q8_0" : "f16";
      types.add(type);
      assert.equal(out.typeName, type.toUpperCase(), t.name);
      assert.deepEqual(readGgufTensorData(after, out), encode(values, type), t.name);
    }
    assert.deepEqual([...types].sort(), ["f16", "f32", "q8_0"]);
  });

  it("the quantized model runs in llama.cpp and continues the golden prompt as the F32 model starts it", async () => {
    const g = golden.greedy[0]!;
    const model = await loadGguf(output);
    try {
      const { ids } = await greedy(model, g.promptIdsWithBos, 8);
      // Q8_0 rounding may move a later token; the first ones are stable on this model.
      assert.deepEqual(ids.slice(0, 4), g.ids.slice(0, 4));
    } finally {
      await model.dispose();
    }
  });

  it("shimmy inspect offers the command for an unquantized model, not for a quantized one", () => {
    const f32 = runCli(["inspect", STORIES_GGUF, "--no-default-locations"]);
    assert.match(f32.stdout, /quantization {2}F32 {2}\(unquantized: `shimmy quantize \S+stories260K\.gguf OUT\.gguf --type q8_0` makes it ~3\.8× smaller\)/);
    const q8 = runCli(["inspect", output, "--no-default-locations"]);
    assert.match(q8.stdout, /quantization {2}Q8_0\n/);
  });

  it("refuses an already-quantized input and an existing output", () => {
    const again = runCli(["quantize", output, join(tmp.path, "twice.gguf")]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /tensor "token_embd.weight" is Q8_0; only GGUFs of F32, F16 and BF16 tensors can be re-encoded/);
    const exists = runCli(["quantize", STORIES_GGUF, output]);
    assert.equal(exists.status, 1);
    assert.match(exists.stderr, /the output exists/);
  });
});
