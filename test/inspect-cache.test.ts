import assert from "node:assert/strict";
import { utimesSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { loadConfig } from "../src/config/config.js";
import { GgufValueType } from "../src/formats/gguf.js";
import { cachedInspection, inspectModel } from "../src/registry/inspect.js";
import { Registry } from "../src/registry/registry.js";
import { showJson } from "../src/server/ollama/models.js";
import { writeTinyLlamaGguf } from "./helpers/gguf-fixtures.js";
import { STORIES_CHAT_GGUF, tempDir } from "./helpers/paths.js";

const tmp = tempDir();
after(() => tmp.cleanup());

function specFor(path: string) {
  const registry = new Registry(loadConfig({ modelPaths: [path], scanDefaultLocations: false }, { HOME: "/nonexistent" }));
  const spec = registry.all()[0];
  assert.ok(spec, `${path} is discovered`);
  return spec;
}

describe("bounded, cached model inspection (/api/show)", () => {
  it("gives the same report as a full read, vocabulary summarised from its first tokens", () => {
    const spec = specFor(STORIES_CHAT_GGUF);
    const bounded = inspectModel(spec, { bounded: true });
    assert.deepEqual(bounded, inspectModel(spec));
    assert.deepEqual((bounded.metadata["tokenizer.ggml.tokens"] as { length: number }).length, 512);
    assert.equal(bounded.tokenizer?.vocabSize, 512);
  });

  it("reads a file once per identity and again when it changes", async () => {
    const path = join(tmp.path, "big-array.gguf");
    const values = Array.from({ length: 200_000 }, (_, i) => i);
    await writeTinyLlamaGguf(path, { "x.big": { type: GgufValueType.ARRAY, arrayType: GgufValueType.UINT32, value: values } });
    const spec = specFor(path);
    const first = cachedInspection(spec);
    assert.deepEqual(first.metadata["x.big"], { array: true, length: 200_000, first: [0, 1, 2, 3, 4, 5, 6, 7] });
    assert.equal(cachedInspection(spec), first, "the second call is answered from the cache");
    assert.deepEqual(showJson(spec).model_info, first.metadata);

    await writeTinyLlamaGguf(path, { "x.big": { type: GgufValueType.ARRAY, arrayType: GgufValueType.UINT32, value: values.slice(0, 10) } });
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    const changed = cachedInspection(spec);
    assert.notEqual(changed, first);
    assert.deepEqual((changed.metadata["x.big"] as { length: number }).length, 10);
  });
});
