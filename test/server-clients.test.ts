import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import type { RunningServer } from "../src/server/server.js";
import { CLI, runCli } from "./helpers/cli.js";
import { REPO_ROOT, STORIES_CHAT_GGUF, STORIES_GGUF, tempDir } from "./helpers/paths.js";
import { golden, startTestServer } from "./helpers/server.js";

let server: RunningServer;
const tmp = tempDir();
before(async () => {
  server = await startTestServer();
});
/** Servers the CLI tests started: a failed assertion must not leave one running (it would hold the test run open). */
const spawned: ReturnType<typeof spawn>[] = [];
after(async () => {
  for (const child of spawned) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await server.close();
  tmp.cleanup();
});

interface WsFrame {
  type: string;
  [k: string]: any;
}

/** Sends one frame over /ws/generate and collects every frame until the server closes. */
function wsExchange(payload: string, url = server.url): Promise<{ frames: WsFrame[]; code: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace("http", "ws")}/ws/generate`);
    const frames: WsFrame[] = [];
    ws.on("open", () => ws.send(payload));
    ws.on("message", (data) => frames.push(JSON.parse(data.toString())));
    ws.on("close", (code) => resolve({ frames, code }));
    ws.on("error", reject);
  });
}

describe("WebSocket /ws/generate", () => {
  it("streams golden greedy text as token frames, then a done frame with usage", async () => {
    const g = golden.greedy[0]!;
    const { frames, code } = await wsExchange(JSON.stringify({ model: "stories260k", prompt: g.prompt, max_tokens: g.maxTokens, temperature: 0 }));
    assert.equal(code, 1000);
    const tokens = frames.filter((f) => f.type === "token");
    assert.equal(tokens.map((f) => f.text).join(""), g.text);
    const done = frames[frames.length - 1]!;
    assert.equal(done.type, "done");
    assert.equal(done.done, true);
    assert.equal(done.finish_reason, "length");
    assert.deepEqual(done.usage, { prompt_tokens: 5, completion_tokens: 30, total_tokens: 35, cached_tokens: done.usage.cached_tokens });
  });

  it("accepts chat messages", async () => {
    const { frames } = await wsExchange(JSON.stringify({ model: "stories260k-chat", messages: golden.chat.messages, max_tokens: 4 }));
    assert.equal(frames[frames.length - 1]!.usage.prompt_tokens, golden.chat.renderedIds.length);
  });

  it("answers a malformed frame with an error frame and a clean close", async () => {
    for (const [payload, code] of [["not json", "invalid_json"], [JSON.stringify({ prompt: "x" }), "missing_required_parameter"], [JSON.stringify({ model: "stories260k", prompt: "x", temperature: 9 }), "invalid_value"], [JSON.stringify({ model: "nope", prompt: "x" }), "model_not_found"]] as const) {
      const r = await wsExchange(payload);
      assert.equal(r.frames.length, 1, payload);
      assert.equal(r.frames[0]!.type, "error");
      assert.equal(r.frames[0]!.error.code, code);
      assert.equal(r.code, 1008);
    }
  });
});

describe("shimmy generate", () => {
  it("reproduces golden greedy ids and text (--json)", () => {
    const g = golden.greedy[0]!;
    const r = runCli(["generate", STORIES_GGUF, "--prompt", g.prompt, "--max-tokens", String(g.maxTokens), "--temperature", "0", "--no-default-locations", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.text, g.text);
    assert.deepEqual(out.token_ids, g.ids);
    assert.deepEqual(out.prompt_token_ids, g.promptIdsWithBos);
    assert.equal(out.finish_reason, "length");
  });

  it("streams text to stdout and prints counts and speed to stderr", () => {
    const r = runCli(["generate", STORIES_CHAT_GGUF, "--prompt", "Once upon a time", "--chat", "-n", "8", "-t", "0", "--no-default-locations"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, ", there was a little girl\n");
    assert.match(r.stderr, /5 prompt tokens \(\d+ tok\/s\), 8 generated \([\d.]+ tok\/s\), finish: length/);
  });

  it("is reproducible with a seed", () => {
    const args = ["generate", STORIES_GGUF, "--prompt", "Tom and Sue", "-n", "20", "-t", "1", "--seed", "7", "--no-default-locations", "--json"];
    assert.equal(JSON.parse(runCli(args).stdout).text, JSON.parse(runCli(args).stdout).text);
  });
});

describe("shimmy bench", () => {
  it("measures load, prompt and decode rates and TTFT of a real model", () => {
    const r = runCli(["bench", STORIES_GGUF, "--no-default-locations", "--runs", "1", "--prompt-tokens", "64", "--gen-tokens", "32", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.threads, 1);
    assert.equal(out.generated_tokens, 32, "end-of-generation is banned: exactly the asked tokens");
    assert.ok(out.prompt_tokens > 32 && out.prompt_tokens <= 64);
    for (const k of ["load_ms", "prompt_tokens_per_second", "decode_tokens_per_second", "ttft_ms"]) assert.ok(out[k] > 0, `${k} = ${out[k]}`);
    assert.equal(out.build, "prebuilt");
    assert.equal(out.concurrent_decode_tokens_per_second, null, "no --concurrency, no batched run");
  });

  it("with --concurrency, decodes that many streams at once and reports their aggregate rate", () => {
    const r = runCli(["bench", STORIES_GGUF, "--no-default-locations", "--runs", "1", "--prompt-tokens", "16", "--gen-tokens", "16", "--concurrency", "3", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.concurrency, 3);
    assert.ok(out.concurrent_decode_tokens_per_second > 0, `${out.concurrent_decode_tokens_per_second}`);
    if (process.platform === "linux" && process.arch === "x64") assert.match(out.cpu_library, /^[a-z0-9_]+$/);
  });
});

/** Starts `shimmy serve --json` (`command`: node arguments naming the CLI) on one model; resolves with its listening line. */
async function spawnServe(command: string[], model: string): Promise<{ child: ReturnType<typeof spawn>; line: any }> {
  const child = spawn(process.execPath, [...command, "serve", "--model-path", model, "--no-default-locations", "--port", "0", "--json"], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH, HOME: tmp.path, SHIMMY_THREADS: "1", SHIMMY_GPU: "off", SHIMMY_NATIVE: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  spawned.push(child);
  let out = "";
  const line = await new Promise<any>((resolve, reject) => {
    child.stdout!.on("data", (d) => {
      out += d;
      const first = out.split("\n").find((l) => l.includes('"listening"'));
      if (first) resolve(JSON.parse(first));
    });
    child.on("exit", (code) => reject(new Error(`serve exited early with ${code}: ${out}`)));
  });
  return { child, line };
}

describe("shimmy serve", () => {
  it("prints its URL and models, serves, and exits 0 on SIGTERM", async () => {
    const { child, line } = await spawnServe(["--import", "tsx", CLI], STORIES_CHAT_GGUF);
    assert.match(line.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(line.models, ["stories260k-chat"]);
    // SHIMMY_THREADS=1 applies to batches too (as llama-server's -tb); the launcher chose the pool,
    // whose spare thread is parked only while a model is loaded.
    const health = (await (await fetch(`${line.url}/health`)).json()) as { compute: unknown };
    // No model loaded yet, so no CPU library either.
    assert.deepEqual(health.compute, { build: "prebuilt", cpu_library: null, threads: 1, threads_alternative: null, batch_threads: 1, libuv_threadpool_size: 2, libuv_threads_parked: 0 });
    const r = await fetch(`${line.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "stories260k-chat", messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 4, temperature: 0 }) });
    assert.equal(r.status, 200);
    const loaded = (await (await fetch(`${line.url}/health`)).json()) as { compute: { libuv_threads_parked: number; cpu_library: string | null } };
    assert.equal(loaded.compute.libuv_threads_parked, 1);
    // Linux x64 ships one CPU library per instruction-set level; llama.cpp picked one of them.
    if (process.platform === "linux" && process.arch === "x64") assert.ok(existsSync(join(REPO_ROOT, "node_modules", "@node-llama-cpp", "linux-x64", "bins", "linux-x64", `libggml-cpu-${loaded.compute.cpu_library}.so`)), `cpu_library ${loaded.compute.cpu_library} names a prebuilt library`);
    const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    assert.equal(await exit, 0);
  });

  it("the built command (the bundle `npx shimmy` runs) validates, generates over HTTP and WebSocket, exits 0 on SIGTERM", async () => {
    // `npm test` builds first, so this is the bundle of the code under test.
    const bin = join(REPO_ROOT, "dist", "cli", "shimmy.cjs");
    assert.ok(existsSync(join(REPO_ROOT, "dist", "cli", "shimmy.bundle.mjs")), "npm run build makes the bundle");
    const { child, line } = await spawnServe([bin], STORIES_GGUF);
    const bad = await fetch(`${line.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "stories260k", prompt: "x", max_tokens: "four" }) });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as any).error.param, "max_tokens");
    const g = golden.greedy[0]!;
    const good = await fetch(`${line.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "stories260k", prompt: g.prompt, max_tokens: g.maxTokens, temperature: 0 }) });
    assert.equal(((await good.json()) as any).choices[0].text, g.text);
    const { frames } = await wsExchange(JSON.stringify({ model: "stories260k", prompt: g.prompt, max_tokens: g.maxTokens }), line.url);
    assert.equal(frames.filter((f) => f.type === "token").map((f) => f.text).join(""), g.text);
    // Here the pool really has the launcher's 2 threads, one parked: exiting must release it
    // (libuv joins its threads at exit), or the exit below would hang.
    const health = (await (await fetch(`${line.url}/health`)).json()) as { compute: { libuv_threads_parked: number } };
    assert.equal(health.compute.libuv_threads_parked, 1);
    const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    assert.equal(await exit, 0);
  });
});
