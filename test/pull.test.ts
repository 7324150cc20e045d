import assert from "node:assert/strict";
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, writeFileSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadConfig } from "../src/config/config.js";
import { discoverModels } from "../src/discovery/discover.js";
import { deleteModel } from "../src/pull/delete.js";
import { PullError } from "../src/pull/errors.js";
import type { PullProgress } from "../src/pull/progress.js";
import { type PullSettings, planPull } from "../src/pull/pull.js";
import { parsePullRef } from "../src/pull/refs.js";
import { FakeHub, GOOD_TOKEN, sha256 } from "./helpers/fake-hub.js";
import { STORIES_CHAT_GGUF, STORIES_GGUF, STORIES_HF, type TempDir, tempDir } from "./helpers/paths.js";

const GGUF_REPO = "test-org/stories260K-GGUF";
const SPLIT_REPO = "test-org/split-GGUF";
const ST_REPO = "test-org/stories260K";
const GATED_REPO = "test-org/gated-GGUF";
const PART1 = Buffer.alloc(300_000, 1);
const PART2 = Buffer.alloc(200_000, 2);
const TEMPLATE = Buffer.from("{{ .Prompt }}");
const PARAMS = Buffer.from(JSON.stringify({ stop: ["</s>"] }));

let hub: FakeHub;
let tmp: TempDir;
let caseNo = 0;

before(async () => {
  hub = await new FakeHub().start();
  hub.addRepo(GGUF_REPO, { "README.md": Buffer.from("# stories\n"), "stories260K-Q4_K_M.gguf": STORIES_GGUF, "stories260K-Q8_0.gguf": STORIES_CHAT_GGUF, "stories260K-mmproj-f16.gguf": Buffer.from("not a model") });
  hub.addRepo(SPLIT_REPO, { "big-Q4_K_M-00001-of-00002.gguf": PART1, "big-Q4_K_M-00002-of-00002.gguf": PART2, "big-Q8_0.gguf": Buffer.from("q8") });
  const hf: Record<string, string> = {};
  for (const f of readdirSync(STORIES_HF)) hf[f] = join(STORIES_HF, f);
  hub.addRepo(ST_REPO, hf);
  hub.addRepo(GATED_REPO, { "gated-Q4_K_M.gguf": STORIES_GGUF }, { gated: true });
  hub.addOllamaModel("library/stories:latest", [
    { mediaType: "model", bytes: readFileSync(STORIES_GGUF) },
    { mediaType: "template", bytes: TEMPLATE },
    { mediaType: "params", bytes: PARAMS },
  ]);
  hub.addOllamaModel("someone/stories:q8", [{ mediaType: "model", bytes: readFileSync(STORIES_GGUF) }, { mediaType: "template", bytes: TEMPLATE }]);
  tmp = tempDir("shimmy-pull-");
});
after(async () => {
  await hub.close();
  tmp.cleanup();
});

/** A fresh home per case: the HF cache and Ollama's store under it, the fake Hub and registry as remotes. */
function freshHome(extraEnv: NodeJS.ProcessEnv = {}): { home: string; hfCache: string; ollama: string; settings: PullSettings } {
  const home = join(tmp.path, `case-${++caseNo}`);
  mkdirSync(home);
  const env = { HOME: home, HF_HOME: join(home, "hf"), OLLAMA_MODELS: join(home, "ollama"), HF_ENDPOINT: hub.url, SHIMMY_OLLAMA_REGISTRY: hub.url, ...extraEnv };
  return { home, hfCache: join(home, "hf", "hub"), ollama: join(home, "ollama"), settings: { env, home, retry: { attempts: 4, baseDelayMs: 10 } } };
}

async function pull(ref: string, settings: PullSettings): Promise<{ events: PullProgress[]; result: Awaited<ReturnType<Awaited<ReturnType<typeof planPull>>["run"]>> }> {
  const events: PullProgress[] = [];
  const result = await (await planPull(ref, settings)).run((e) => events.push(e));
  return { events, result };
}

/** What discovery finds in the test's home (the built-in demo model, which stands in for "nothing", left out). */
function discovered(settings: PullSettings) {
  return discoverModels(loadConfig({ scanDefaultLocations: true, demo: false }, settings.env), join(settings.home, "cwd")).models;
}

const repoDir = (hfCache: string, repo: string) => join(hfCache, `models--${repo.replace("/", "--")}`);

async function rejectsWith(promise: Promise<unknown>, status: number, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof PullError, `a PullError, got ${String(e)}`);
    assert.equal(e.status, status, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

describe("pull references", () => {
  it("parses Hub and Ollama references with their defaults", () => {
    assert.deepEqual(parsePullRef("hf:org/repo"), { kind: "hf", repo: "org/repo", revision: "main" });
    assert.deepEqual(parsePullRef("hf:org/repo:q4_k_m"), { kind: "hf", repo: "org/repo", revision: "main", quant: "q4_k_m" });
    assert.deepEqual(parsePullRef("hf:org/repo:Model-Q8_0.gguf"), { kind: "hf", repo: "org/repo", revision: "main", file: "Model-Q8_0.gguf" });
    assert.deepEqual(parsePullRef("hf.co/org/repo:Q8_0"), { kind: "hf", repo: "org/repo", revision: "main", quant: "Q8_0" });
    assert.deepEqual(parsePullRef("huggingface.co/org/repo:latest"), { kind: "hf", repo: "org/repo", revision: "main" });
    assert.deepEqual(parsePullRef("llama3.2"), { kind: "ollama", host: "registry.ollama.ai", namespace: "library", model: "llama3.2", tag: "latest" });
    assert.deepEqual(parsePullRef("ollama:library/llama3.2:1b"), { kind: "ollama", host: "registry.ollama.ai", namespace: "library", model: "llama3.2", tag: "1b" });
    assert.deepEqual(parsePullRef("example.com:5000/ns/name:tag"), { kind: "ollama", host: "example.com:5000", namespace: "ns", model: "name", tag: "tag" });
    for (const bad of ["", "hf:repo-without-org", "hf:org/repo:", "a/b/c/d", "name:bad tag", "hf:../x"]) assert.throws(() => parsePullRef(bad), (e: unknown) => e instanceof PullError && e.status === 400, bad);
  });
});

describe("pull from the Hugging Face Hub", () => {
  it("pulls the default quant (Q4_K_M) into the HF cache layout, with Ollama's progress, and discovery finds it", async () => {
    const { hfCache, settings } = freshHome();
    const { events, result } = await pull(`hf:${GGUF_REPO}`, settings);
    const sha = sha256(readFileSync(STORIES_GGUF));
    const dir = repoDir(hfCache, GGUF_REPO);
    const commit = readFileSync(join(dir, "refs", "main"), "utf8");
    assert.match(commit, /^[0-9a-f]{40}$/);
    const link = join(dir, "snapshots", commit, "stories260K-Q4_K_M.gguf");
    assert.equal(readlinkSync(link), `../../blobs/${sha}`, "a relative link to the blob");
    assert.ok(lstatSync(join(dir, "blobs", sha)).isFile());
    assert.deepEqual(readFileSync(link), readFileSync(STORIES_GGUF));
    assert.deepEqual(readdirSync(join(dir, "blobs")), [sha], "only the chosen quant, no README, no projector");
    assert.equal(result.modelPath, link);

    assert.deepEqual(events[0], { status: "pulling manifest" });
    const size = readFileSync(STORIES_GGUF).length;
    const layer = events.filter((e) => e.digest === `sha256:${sha}`);
    assert.ok(layer.length >= 1 && layer.every((e) => e.status === `pulling ${sha.slice(0, 12)}` && e.total === size));
    assert.equal(layer.at(-1)!.completed, size);
    assert.deepEqual(events.slice(-3), [{ status: "verifying sha256 digest" }, { status: "writing manifest" }, { status: "success" }]);

    const model = discovered(settings).find((m) => m.files[0] === link);
    assert.ok(model, "discovery lists the pulled GGUF");
    assert.equal(model.name, GGUF_REPO.toLowerCase());
    assert.equal(model.error, undefined);
  });

  it("pulls an explicit quant (any case) or an explicit file", async () => {
    const { hfCache, settings } = freshHome();
    const chatSha = sha256(readFileSync(STORIES_CHAT_GGUF));
    const byQuant = await pull(`hf:${GGUF_REPO}:q8_0`, settings);
    assert.ok(byQuant.result.modelPath.endsWith("stories260K-Q8_0.gguf"));
    assert.equal(realpathSync(byQuant.result.modelPath), join(realpathSync(repoDir(hfCache, GGUF_REPO)), "blobs", chatSha));
    const byFile = await pull(`hf.co/${GGUF_REPO}:stories260K-Q4_K_M.gguf`, settings);
    assert.ok(byFile.result.modelPath.endsWith("stories260K-Q4_K_M.gguf"));
    // Both quants now sit in one snapshot; the second pull found the first's blob in place.
    assert.equal(readdirSync(join(repoDir(hfCache, GGUF_REPO), "blobs")).length, 2);
    const again = await pull(`hf:${GGUF_REPO}:Q8_0`, settings);
    const layer = again.events.filter((e) => e.digest === `sha256:${chatSha}`);
    assert.deepEqual(layer, [{ status: `pulling ${chatSha.slice(0, 12)}`, digest: `sha256:${chatSha}`, total: readFileSync(STORIES_CHAT_GGUF).length, completed: readFileSync(STORIES_CHAT_GGUF).length }], "a blob already there is reported whole, not fetched");
    assert.equal(hub.requests.filter((r) => r.path === `/cdn/${chatSha}`).length, 1);
  });

  it("pulls every part of a split GGUF", async () => {
    const { settings } = freshHome();
    const { result } = await pull(`hf:${SPLIT_REPO}`, settings);
    assert.equal(result.files.length, 2);
    assert.ok(result.files[0]!.endsWith("big-Q4_K_M-00001-of-00002.gguf"));
    assert.deepEqual(readFileSync(result.files[0]!), PART1);
    assert.deepEqual(readFileSync(result.files[1]!), PART2);
    const viaSecondPart = await pull(`hf:${SPLIT_REPO}:big-Q4_K_M-00002-of-00002.gguf`, settings);
    assert.deepEqual(viaSecondPart.result.files, result.files, "naming any part pulls the whole set");
  });

  it("pulls a repo without GGUFs as a SafeTensors checkpoint that discovery lists", async () => {
    const { hfCache, settings } = freshHome();
    const { result } = await pull(`hf:${ST_REPO}`, settings);
    const names = readdirSync(result.modelPath).sort();
    assert.deepEqual(names, readdirSync(STORIES_HF).filter((f) => f !== "README.md").sort());
    for (const f of names) assert.deepEqual(readFileSync(join(result.modelPath, f)), readFileSync(join(STORIES_HF, f)), f);
    // Small files are named by their git blob id, as on the Hub.
    assert.ok(existsSync(join(repoDir(hfCache, ST_REPO), "blobs", hub.etagOf(ST_REPO, "config.json"))));
    const model = discovered(settings).find((m) => m.files[0] === result.modelPath);
    assert.equal(model?.format, "safetensors");
    await rejectsWith(planPull(`hf:${ST_REPO}:Q4_K_M`, settings), 400, /no GGUF files/);
  });

  it("names the quants that exist when the asked one does not", async () => {
    const { settings } = freshHome();
    await rejectsWith(planPull(`hf:${GGUF_REPO}:Q5_K_S`, settings), 404, /no GGUF for quant Q5_K_S; available: Q4_K_M, Q8_0$/);
    await rejectsWith(planPull(`hf:${GGUF_REPO}:missing.gguf`, settings), 404, /has no file missing\.gguf/);
    await rejectsWith(planPull("hf:test-org/does-not-exist", settings), 404, /was not found/);
  });

  it("says a gated repo needs HF_TOKEN, and sends the token as a bearer", async () => {
    const { settings } = freshHome();
    await rejectsWith(planPull(`hf:${GATED_REPO}`, settings), 401, /gated or private.*set HF_TOKEN/);
    const authorized = freshHome({ HF_TOKEN: GOOD_TOKEN });
    const { result } = await pull(`hf:${GATED_REPO}`, authorized.settings);
    assert.ok(existsSync(result.modelPath));
    assert.ok(hub.requests.some((r) => r.path.startsWith(`/api/models/${GATED_REPO}`) && r.authorization === `Bearer ${GOOD_TOKEN}`));
  });

  it("resumes a dropped connection with a Range request and ends verified", async () => {
    const { settings } = freshHome();
    const sha = sha256(PART1);
    hub.faults.set(sha, { dropAfter: 100_000 });
    const { result } = await pull(`hf:${SPLIT_REPO}:Q4_K_M`, settings);
    assert.deepEqual(readFileSync(result.files[0]!), PART1);
    const fetched = hub.requests.filter((r) => r.path === `/cdn/${sha}`).slice(-2);
    assert.equal(fetched[0]!.range, undefined);
    assert.equal(fetched[1]!.range, "bytes=100000-", "the retry asks only for the rest");
  });

  it("refuses a blob whose bytes do not match its digest, and installs nothing", async () => {
    const { hfCache, settings } = freshHome();
    const sha = sha256(readFileSync(STORIES_GGUF));
    hub.faults.set(sha, { corrupt: true });
    try {
      await rejectsWith(pull(`hf:${GGUF_REPO}`, settings), 502, /does not match its digest/);
    } finally {
      hub.faults.delete(sha);
    }
    const dir = repoDir(hfCache, GGUF_REPO);
    assert.deepEqual(readdirSync(join(dir, "blobs")), [], "no blob, no .incomplete");
    assert.equal(existsSync(join(dir, "snapshots")), false);
    assert.equal(discovered(settings).length, 0);
  });

  it("an abort leaves a resumable .incomplete and nothing visible; the next pull resumes it", async () => {
    const { hfCache, settings } = freshHome();
    const sha = sha256(readFileSync(STORIES_GGUF));
    hub.faults.set(sha, { stallAfter: 400_000 });
    const controller = new AbortController();
    const plan = await planPull(`hf:${GGUF_REPO}`, { ...settings, signal: controller.signal });
    // Progress is reported as bytes land on disk; the first report means a part is there.
    await assert.rejects(plan.run((e) => void (e.completed !== undefined && e.completed > 0 && controller.abort())), (e: Error) => e.name === "AbortError");
    const blobs = join(repoDir(hfCache, GGUF_REPO), "blobs");
    assert.deepEqual(readdirSync(blobs), [`${sha}.incomplete`]);
    const kept = readFileSync(join(blobs, `${sha}.incomplete`)).length;
    assert.ok(kept > 0 && kept <= 400_000, `${kept} bytes kept`);
    assert.equal(discovered(settings).length, 0, "nothing half-visible");
    const { result } = await pull(`hf:${GGUF_REPO}`, settings);
    assert.deepEqual(readFileSync(result.modelPath), readFileSync(STORIES_GGUF));
    assert.equal(hub.requests.filter((r) => r.path === `/cdn/${sha}`).at(-1)!.range, `bytes=${kept}-`);
  });
});

describe("pull from an Ollama registry", () => {
  it("writes Ollama's store layout (blobs, manifest) that discovery reads", async () => {
    const { ollama, settings } = freshHome();
    const { events, result } = await pull("stories", settings);
    const manifestPath = join(ollama, "manifests", "registry.ollama.ai", "library", "stories", "latest");
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { config: { digest: string }; layers: { digest: string }[] };
    for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) assert.ok(existsSync(join(ollama, "blobs", d.replace(":", "-"))), d);
    assert.deepEqual(readFileSync(join(ollama, "blobs", `sha256-${sha256(TEMPLATE)}`)), TEMPLATE);
    assert.equal(result.modelPath, join(ollama, "blobs", `sha256-${sha256(readFileSync(STORIES_GGUF))}`));
    assert.deepEqual(events.map((e) => e.status).filter((s, i, all) => all.indexOf(s) === i), ["pulling manifest", ...[manifest.layers[0]!, manifest.layers[1]!, manifest.layers[2]!, manifest.config].map((l) => `pulling ${l.digest.slice(7, 19)}`), "verifying sha256 digest", "writing manifest", "success"]);
    const model = discovered(settings).find((m) => m.files[0] === result.modelPath);
    assert.equal(model?.name, "stories:latest");
    await rejectsWith(planPull("ollama:nothing-here", settings), 404, /not found in the registry/);
  });
});

describe("rm", () => {
  it("deletes a pulled HF model: its snapshot entry, then the repo folder once empty", async () => {
    const { hfCache, settings } = freshHome();
    await pull(`hf:${GGUF_REPO}:Q8_0`, settings);
    await pull(`hf:${GGUF_REPO}:Q4_K_M`, settings);
    const dir = repoDir(hfCache, GGUF_REPO);
    const q8 = discovered(settings).find((m) => m.files[0]!.endsWith("Q8_0.gguf"))!;
    const first = await deleteModel(q8);
    assert.deepEqual(first.blobsRemoved, [join(dir, "blobs", sha256(readFileSync(STORIES_CHAT_GGUF)))]);
    assert.deepEqual(readdirSync(join(dir, "blobs")), [sha256(readFileSync(STORIES_GGUF))], "the other quant's blob stays");
    const rest = discovered(settings);
    assert.equal(rest.length, 1);
    await deleteModel(rest[0]!);
    assert.equal(existsSync(dir), false);
  });

  it("deletes an Ollama manifest and only the blobs no other manifest names", async () => {
    const { ollama, settings } = freshHome();
    await pull("stories", settings);
    await pull("someone/stories:q8", settings);
    // One file, two manifests: discovery lists one model, and the name typed says which manifest goes.
    const models = discovered(settings);
    assert.equal(models.length, 1);
    await assert.rejects(deleteModel(models[0]!), /several Ollama manifests/);
    const result = await deleteModel(models[0]!, { requestedName: "stories" });
    assert.deepEqual(result.removed, [join(ollama, "manifests", "registry.ollama.ai", "library", "stories", "latest")]);
    assert.deepEqual(result.blobsRemoved.sort(), [join(ollama, "blobs", `sha256-${sha256(PARAMS)}`)], "the GGUF, template and config are still used by someone/stories:q8");
    assert.equal(existsSync(join(ollama, "manifests", "registry.ollama.ai", "library")), false, "empty folders go too");
    assert.deepEqual(discovered(settings).map((m) => m.name), ["someone/stories:q8"]);
  });

  it("refuses a model file placed by hand unless forced", async () => {
    const { home, settings } = freshHome();
    const path = join(home, "mine.gguf");
    copyFileSync(STORIES_GGUF, path);
    const spec = discoverModels(loadConfig({ modelPaths: [path], scanDefaultLocations: false }, settings.env)).models[0]!;
    await rejectsWith(deleteModel(spec), 403, /did not download.*--force/);
    assert.ok(existsSync(path));
    writeFileSync(join(home, "keep"), "");
    await deleteModel(spec, { force: true });
    assert.equal(existsSync(path), false);
    assert.ok(existsSync(join(home, "keep")));
  });
});
