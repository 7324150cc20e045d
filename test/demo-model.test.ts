import assert from "node:assert/strict";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import OpenAI from "openai";
import { loadConfig } from "../src/config/config.js";
import { discoverModels } from "../src/discovery/discover.js";
import { DEMO_MODEL_NAME, demoModelPath } from "../src/discovery/sources/demo.js";
import { runCli } from "./helpers/cli.js";
import { emptyHomeEnv, startEmptyHomeServer } from "./helpers/empty-home.js";
import { REPO_ROOT, STORIES_GGUF, tempDir } from "./helpers/paths.js";

const tmp = tempDir("shimmy-demo-");
after(() => tmp.cleanup());

async function listed(url: string): Promise<{ openai: string[]; ollama: string[] }> {
  const openai = ((await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] }).data.map((m) => m.id);
  const ollama = ((await (await fetch(`${url}/api/tags`)).json()) as { models: { name: string }[] }).models.map((m) => m.name);
  return { openai, ollama };
}

describe("the built-in demo model", () => {
  it("ships in the package's assets", () => {
    assert.equal(demoModelPath(), join(REPO_ROOT, "assets", "demo", "stories260K-chat.gguf"));
  });

  it("is served on an empty setup, through crash isolation, and answers the OpenAI SDK with max_tokens unset", async () => {
    const server = await startEmptyHomeServer(join(tmp.path, "empty"));
    try {
      assert.deepEqual(await listed(server.url), { openai: [DEMO_MODEL_NAME], ollama: [DEMO_MODEL_NAME] });
      const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
      const answer = await client.chat.completions.create({ model: DEMO_MODEL_NAME, messages: [{ role: "user", content: "Once upon a time" }], temperature: 0 });
      assert.ok(answer.choices[0]!.message.content!.length > 20);
      // No max_tokens: until the model stops or its (512-token) context is full.
      assert.ok(answer.usage!.total_tokens <= 512);
      if (answer.choices[0]!.finish_reason === "length") assert.equal(answer.usage!.total_tokens, 512);
      const health = (await (await fetch(`${server.url}/health`)).json()) as { isolation: { enabled: boolean; probes_run: number } };
      assert.deepEqual(health.isolation.enabled, true);
      assert.equal(health.isolation.probes_run, 1);
    } finally {
      await server.close();
    }
  });

  it("is not listed when another servable model exists", async () => {
    const dir = join(tmp.path, "with-model");
    mkdirSync(dir, { recursive: true });
    symlinkSync(STORIES_GGUF, join(dir, "mine.gguf"));
    const server = await startEmptyHomeServer(join(tmp.path, "home-2"), { modelDirs: [dir] });
    try {
      assert.deepEqual(await listed(server.url), { openai: ["mine"], ollama: ["mine"] });
      const res = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: DEMO_MODEL_NAME, messages: [{ role: "user", content: "hi" }] }) });
      assert.equal(res.status, 404);
    } finally {
      await server.close();
    }
  });

  it("is off with --no-demo and with --no-default-locations", () => {
    const env = emptyHomeEnv(join(tmp.path, "home-3"));
    assert.deepEqual(discoverModels(loadConfig({}, env), tmp.path).models.map((m) => m.name), [DEMO_MODEL_NAME]);
    assert.deepEqual(discoverModels(loadConfig({ demo: false }, env), tmp.path).models, []);
    assert.deepEqual(discoverModels(loadConfig({}, { ...env, SHIMMY_DEMO: "0" }), tmp.path).models, []);
    assert.deepEqual(discoverModels(loadConfig({ scanDefaultLocations: false }, env), tmp.path).models, []);
  });

  it("stands in while the only model found is unusable, and shows in `shimmy list`", () => {
    const env = emptyHomeEnv(join(tmp.path, "home-4"));
    const dir = join(tmp.path, "broken");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "empty.gguf"), "not a GGUF file");
    const found = discoverModels(loadConfig({ modelDirs: [dir] }, env), tmp.path).models;
    assert.deepEqual(found.map((m) => [m.name, m.error === undefined]), [["empty", false], [DEMO_MODEL_NAME, true]]);
    const list = runCli(["list", "--short", "--model-dirs", dir], env);
    assert.equal(list.status, 0, list.stderr);
    assert.deepEqual(list.stdout.trim().split("\n"), [DEMO_MODEL_NAME]);
    assert.deepEqual(runCli(["list", "--short", "--no-demo", "--model-dirs", dir], env).stdout.trim(), "");
  });
});
