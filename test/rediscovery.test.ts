import assert from "node:assert/strict";
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { RunningServer } from "../src/server/server.js";
import { startEmptyHomeServer } from "./helpers/empty-home.js";
import { STORIES_CHAT_GGUF, STORIES_GGUF, tempDir } from "./helpers/paths.js";
import { postJson, until } from "./helpers/server.js";

const tmp = tempDir("shimmy-rediscovery-");
const modelsDir = join(tmp.path, "models");
const modelFile = join(modelsDir, "arrived.gguf");
let server: RunningServer;

interface RefreshAnswer {
  models: { name: string; source: string; servable: boolean; error: string | null }[];
  added: string[];
  removed: string[];
}

const listed = async (): Promise<string[]> => ((await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string }[] }).data.map((m) => m.id);
const tags = async (): Promise<string[]> => ((await (await fetch(`${server.url}/api/tags`)).json()) as { models: { name: string }[] }).models.map((m) => m.name);
const refresh = async (): Promise<RefreshAnswer> => {
  const res = await fetch(`${server.url}/refresh`, { method: "POST" });
  assert.equal(res.status, 200);
  return (await res.json()) as RefreshAnswer;
};
const chat = (model: string) => postJson(`${server.url}/v1/chat/completions`, { model, messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 8, temperature: 0 });
const probesRun = async (): Promise<number> => ((await (await fetch(`${server.url}/health`)).json()) as { isolation: { probes_run: number } }).isolation.probes_run;

before(async () => {
  mkdirSync(modelsDir, { recursive: true });
  // No periodic rescan: what follows is seen through the folder watch (or POST /refresh).
  server = await startEmptyHomeServer(join(tmp.path, "home"), { modelDirs: [modelsDir], rescanIntervalMs: 0 });
});
after(async () => {
  await server.close();
  tmp.cleanup();
});

describe("models found while serving", () => {
  it("watches the model folder", async () => {
    assert.ok(server.ctx.rescanner.watched().includes(modelsDir), JSON.stringify(server.ctx.rescanner.watched()));
    const health = (await (await fetch(`${server.url}/health`)).json()) as { discovery: { watched_folders: number } };
    assert.ok(health.discovery.watched_folders >= 1);
    assert.deepEqual(await listed(), ["shimmy-demo"]);
  });

  it("a GGUF copied in is unservable while half-written, then appears and answers; the demo goes", async () => {
    const bytes = readFileSync(STORIES_GGUF);
    const fd = openSync(modelFile, "w");
    try {
      writeSync(fd, bytes, 0, bytes.length / 2);
      const half = await refresh();
      const partial = half.models.find((m) => m.name === "arrived");
      assert.ok(partial, JSON.stringify(half));
      assert.equal(partial.servable, false);
      assert.match(partial.error ?? "", /truncated|impossible for a file of/);
      assert.deepEqual(await listed(), ["shimmy-demo"]);
      for (let at = bytes.length / 2; at < bytes.length; at += 65536) {
        writeSync(fd, bytes, at, Math.min(65536, bytes.length - at));
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      closeSync(fd);
    }
    await until(async () => JSON.stringify(await listed()) === JSON.stringify(["arrived"]), "the copied model to be listed by the watch");
    assert.deepEqual(await tags(), ["arrived"]);
    const answer = await chat("arrived");
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.ok(answer.json.choices[0].message.content.length > 0);
    assert.ok(server.ctx.pool.isLoaded("arrived"));
  });

  it("a changed file is unloaded, probed again and reloaded; a request meanwhile waits for the old one's requests", async () => {
    const probes = await probesRun();
    const lease = await server.ctx.pool.acquire("arrived");
    // Replaced in one step, as a finished download is: another size and mtime.
    writeFileSync(`${modelFile}.part`, readFileSync(STORIES_CHAT_GGUF));
    renameSync(`${modelFile}.part`, modelFile);
    await refresh();
    assert.ok(server.ctx.pool.isLoaded("arrived"), "a model in use stays until its requests finish");
    const waiting = chat("arrived");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await probesRun(), probes, "the new file is not probed while the old load is in use");
    lease.release();
    const answer = await waiting;
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.equal(await probesRun(), probes + 1);
    assert.equal(server.ctx.pool.info().find((m) => m.name === "arrived")?.pins, 0);
  });

  it("a removed file disappears; its loaded model finishes in-flight requests, then unloads", async () => {
    const lease = await server.ctx.pool.acquire("arrived");
    unlinkSync(modelFile);
    await until(async () => !(await listed()).includes("arrived"), "the removed model to leave /v1/models");
    assert.deepEqual(await listed(), ["shimmy-demo"]);
    assert.equal((await chat("arrived")).status, 404);
    assert.ok(server.ctx.pool.isLoaded("arrived"), "still loaded while a request holds it");
    lease.release();
    await until(async () => !server.ctx.pool.isLoaded("arrived"), "the removed model to unload");
  });

  it("POST /refresh answers the model list and what changed; rescans never overlap", async () => {
    writeFileSync(join(modelsDir, "again.gguf"), readFileSync(STORIES_GGUF));
    const answer = await refresh();
    assert.deepEqual(answer.models.map((m) => [m.name, m.source, m.servable]), [["again", "dir", true]]);
    // The watch may have seen the file first; either way the demo is gone now.
    assert.ok(!(await listed()).includes("shimmy-demo"));
    const before = server.ctx.rescanner.count;
    await Promise.all([server.ctx.rescanner.rescan(), server.ctx.rescanner.rescan(), server.ctx.rescanner.rescan()]);
    assert.equal(server.ctx.rescanner.count - before, 2, "one rescan, then one more for both callers that asked meanwhile");
  });
});

describe("POST /refresh and API keys", () => {
  it("needs the key like every route", async () => {
    const keyed = await startEmptyHomeServer(join(tmp.path, "home-keyed"), { apiKeys: ["secret"], watchModels: false, rescanIntervalMs: 0 });
    try {
      assert.equal((await fetch(`${keyed.url}/refresh`, { method: "POST" })).status, 401);
      const ok = await fetch(`${keyed.url}/v1/refresh`, { method: "POST", headers: { authorization: "Bearer secret" } });
      assert.equal(ok.status, 200);
      assert.deepEqual(((await ok.json()) as RefreshAnswer).models.map((m) => m.name), ["shimmy-demo"]);
    } finally {
      await keyed.close();
    }
  });
});
