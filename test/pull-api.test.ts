import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Ollama } from "ollama";
import type { RunningServer } from "../src/server/server.js";
import { FakeHub, sha256 } from "./helpers/fake-hub.js";
import { REPO_ROOT, STORIES_CHAT_GGUF, STORIES_GGUF, type TempDir, tempDir } from "./helpers/paths.js";
import { postJson, startTestServer } from "./helpers/server.js";

const GGUF_REPO = "test-org/stories260K-GGUF";
const TEMPLATE = Buffer.from("{{ .Prompt }}");

let hub: FakeHub;
let tmp: TempDir;

before(async () => {
  hub = await new FakeHub().start();
  hub.addRepo(GGUF_REPO, { "stories260K-Q4_K_M.gguf": STORIES_GGUF, "stories260K-Q8_0.gguf": STORIES_CHAT_GGUF });
  hub.addOllamaModel("library/stories:latest", [{ mediaType: "model", bytes: readFileSync(STORIES_GGUF) }, { mediaType: "template", bytes: TEMPLATE }]);
  tmp = tempDir("shimmy-pull-api-");
});
after(async () => {
  await hub.close();
  tmp.cleanup();
});

/** HOME, the HF cache and Ollama's store in a folder of their own, the fake Hub and registry as remotes. */
function isolatedEnv(name: string): { home: string; env: NodeJS.ProcessEnv } {
  const home = join(tmp.path, name);
  mkdirSync(home);
  return { home, env: { HOME: home, HF_HOME: join(home, "hf"), OLLAMA_MODELS: join(home, "ollama"), HF_ENDPOINT: hub.url, SHIMMY_OLLAMA_REGISTRY: hub.url } };
}

describe("/api/pull and /api/delete", () => {
  let server: RunningServer;
  let ollama: Ollama;
  let home: string;
  let handPlaced: string;

  before(async () => {
    const isolated = isolatedEnv("server");
    home = isolated.home;
    handPlaced = join(home, "hand-placed.gguf");
    copyFileSync(STORIES_GGUF, handPlaced);
    server = await startTestServer({ modelPaths: [handPlaced], scanDefaultLocations: true, isolation: false }, (c) => {
      c.env = isolated.env;
      c.home = home;
    });
    ollama = new Ollama({ host: server.url });
  });
  after(async () => server.close());

  it("streams Ollama's progress through the ollama SDK, and the pulled model answers at once", async () => {
    const events = [];
    for await (const e of await ollama.pull({ model: "stories", stream: true })) events.push(e);
    const statuses = [...new Set(events.map((e) => e.status))];
    const modelDigest = `sha256:${sha256(readFileSync(STORIES_GGUF))}`;
    assert.equal(statuses[0], "pulling manifest");
    assert.ok(statuses.includes(`pulling ${modelDigest.slice(7, 19)}`));
    assert.deepEqual(statuses.slice(-3), ["verifying sha256 digest", "writing manifest", "success"]);
    const layer = events.filter((e) => e.digest === modelDigest);
    assert.equal(layer.at(-1)!.completed, readFileSync(STORIES_GGUF).length);
    assert.equal(layer.at(-1)!.total, readFileSync(STORIES_GGUF).length);

    const tags = await ollama.list();
    assert.ok(tags.models.some((m) => m.name === "stories:latest"), "listed without a restart");
    const answer = await ollama.generate({ model: "stories", prompt: "Once upon a time", options: { num_predict: 8, temperature: 0 } });
    assert.ok((answer.response ?? "").length > 0, "the model generated text");
    assert.equal(answer.done, true);
  });

  it("answers one object with stream: false, and refuses with a status before streaming", async () => {
    const done = await postJson(`${server.url}/api/pull`, { model: `hf.co/${GGUF_REPO}:Q8_0`, stream: false });
    assert.equal(done.status, 200);
    assert.deepEqual(done.json, { status: "success" });
    assert.ok((await ollama.list()).models.some((m) => m.name === GGUF_REPO.toLowerCase()));

    const noQuant = await postJson(`${server.url}/api/pull`, { model: `hf.co/${GGUF_REPO}:Q2_K` });
    assert.equal(noQuant.status, 404);
    assert.match(noQuant.json.error, /available: Q4_K_M, Q8_0/);
    const unknown = await postJson(`${server.url}/api/pull`, { name: "nothing-here" });
    assert.equal(unknown.status, 404);
    assert.match(unknown.json.error, /not found in the registry/);
    const bad = await postJson(`${server.url}/api/pull`, { model: "a/b/c/d" });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /invalid model reference/);
    assert.equal((await postJson(`${server.url}/api/pull`, {})).status, 400);
  });

  it("reports a failure after streaming began in-band, as Ollama does, and installs nothing", async () => {
    const broken = hub.addOllamaModel("someone/broken:latest", [{ mediaType: "model", bytes: readFileSync(STORIES_CHAT_GGUF) }]);
    const digest = (JSON.parse(broken.toString()) as { layers: { digest: string }[] }).layers[0]!.digest.slice(7);
    hub.faults.set(digest, { corrupt: true });
    try {
      await assert.rejects(async () => {
        for await (const _ of await ollama.pull({ model: "someone/broken", stream: true }));
      }, /does not match its digest/);
    } finally {
      hub.faults.delete(digest);
    }
    assert.equal(existsSync(join(home, "ollama", "manifests", "registry.ollama.ai", "someone")), false);
  });

  it("deletes what a pull wrote, 404s unknown names, and never deletes a hand-placed file", async () => {
    const manifest = join(home, "ollama", "manifests", "registry.ollama.ai", "library", "stories", "latest");
    assert.ok(existsSync(manifest));
    await ollama.delete({ model: "stories" });
    assert.equal(existsSync(manifest), false);
    assert.ok(!(await ollama.list()).models.some((m) => m.name === "stories:latest"));
    await assert.rejects(ollama.delete({ model: "stories" }), (e: { status_code?: number }) => e.status_code === 404);

    const res = await fetch(`${server.url}/api/delete`, { method: "DELETE", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "hand-placed" }) });
    assert.equal(res.status, 403);
    assert.match(((await res.json()) as { error: string }).error, /did not download/);
    assert.ok(existsSync(handPlaced));
  });
});

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The built CLI (`npm test` builds first), run asynchronously: the fake Hub lives in this process. */
function shimmy(args: string[], env: NodeJS.ProcessEnv, onLine?: (line: string, child: ChildProcess) => void): Promise<Finished> {
  const child = spawn(process.execPath, [join(REPO_ROOT, "dist", "cli", "shimmy.cjs"), ...args], { env: { PATH: process.env.PATH, NO_COLOR: "1", SHIMMY_NO_DEFAULT_LOCATIONS: "0", ...env } });
  let stdout = "";
  let stderr = "";
  let pending = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d;
    pending += d;
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const line of lines) onLine?.(line, child);
  });
  child.stderr.on("data", (d: Buffer) => void (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

describe("shimmy pull and shimmy rm", () => {
  it("pulls with --json progress lines, resumes after Ctrl-C, and rm refuses a hand-placed file without --force", async () => {
    assert.ok(existsSync(join(REPO_ROOT, "dist", "cli", "shimmy.cjs")), "npm run build made dist/cli/shimmy.cjs");
    const { home, env } = isolatedEnv("cli");
    const pulled = await shimmy(["pull", `hf:${GGUF_REPO}`, "--json"], env);
    assert.equal(pulled.code, 0, pulled.stderr);
    const lines = pulled.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines[0], { status: "pulling manifest" });
    assert.deepEqual(lines.at(-2), { status: "success" });
    assert.equal(lines.at(-1).model, GGUF_REPO.toLowerCase());

    const missing = await shimmy(["pull", `hf:${GGUF_REPO}:Q5_K_S`], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /available: Q4_K_M, Q8_0/);

    const sha = sha256(readFileSync(STORIES_CHAT_GGUF));
    hub.faults.set(sha, { stallAfter: 300_000 });
    const interrupted = await shimmy(["pull", `hf:${GGUF_REPO}:Q8_0`, "--json"], env, (line, child) => {
      if ((JSON.parse(line) as { completed?: number }).completed! > 0) child.kill("SIGINT");
    });
    assert.equal(interrupted.code, 130, interrupted.stderr);
    assert.match(interrupted.stderr, /interrupted.*resumes/);
    const blobs = join(home, "hf", "hub", "models--test-org--stories260K-GGUF", "blobs");
    assert.ok(readdirSync(blobs).includes(`${sha}.incomplete`));
    const resumed = await shimmy(["pull", `hf:${GGUF_REPO}:Q8_0`, "--json"], env);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(hub.requests.filter((r) => r.path === `/cdn/${sha}`).at(-1)!.range ?? "", /^bytes=\d+-$/);
    assert.deepEqual(readFileSync(join(blobs, sha)), readFileSync(STORIES_CHAT_GGUF));

    const q8 = (JSON.parse(resumed.stdout.trim().split("\n").at(-1)!) as { model: string }).model;
    const removed = await shimmy(["rm", q8], env);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(existsSync(join(blobs, sha)), false);

    const mine = join(home, "mine.gguf");
    copyFileSync(STORIES_GGUF, mine);
    const refused = await shimmy(["rm", mine], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /did not download.*--force/);
    assert.ok(existsSync(mine));
    const forced = await shimmy(["rm", mine, "--force"], env);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(existsSync(mine), false);
  });
});
