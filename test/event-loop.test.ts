import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { RunningServer } from "../src/server/server.js";
import { CLI } from "./helpers/cli.js";
import { REPO_ROOT, STORIES_CHAT_GGUF, STORIES_GGUF, tempDir } from "./helpers/paths.js";
import { postJson, startTestServer } from "./helpers/server.js";

/** A POST whose body is sent all but its last byte first: `whileOpen` runs while the server holds the request, then the rest follows. */
function postInTwoParts(url: string, body: string, whileOpen: () => Promise<void>): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode!, json: JSON.parse(text) }));
    });
    req.on("error", reject);
    req.write(body.slice(0, -1), () => {
      whileOpen().then(() => req.end(body.slice(-1)), reject);
    });
  });
}

describe("a huge request does not hold up the server", () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ parallel: 1, maxMessages: 300_000, bodyLimit: 16 * 1024 * 1024 });
  });
  after(async () => {
    await server.close();
  });

  /** Sends `body`, answers /health while it is open, and records the order things finished in. */
  async function withHealthAlongside(path: string, body: unknown): Promise<{ order: string[]; status: number; json: any }> {
    const order: string[] = [];
    const health = async (): Promise<void> => {
      const r = await fetch(`${server.url}/health`);
      assert.equal(r.status, 200);
      await r.json();
      order.push("health");
    };
    const huge = await postInTwoParts(`${server.url}${path}`, JSON.stringify(body), () => Promise.all([health(), health()]).then(() => undefined));
    order.push("huge");
    // And once more after: the huge request left nothing blocking behind it.
    await health();
    return { order, ...huge };
  }

  it("an 8 MB prompt is refused as too long for the context without being tokenized", async () => {
    const prompt = "Once upon a time there was a little girl. ".repeat(200_000).slice(0, 8_000_000);
    const { order, status, json } = await withHealthAlongside("/v1/completions", { model: "stories260k", prompt, max_tokens: 4 });
    assert.deepEqual(order, ["health", "health", "huge", "health"]);
    assert.equal(status, 400, JSON.stringify(json));
    assert.equal(json.error.code, "context_length_exceeded");
    // "at least": the length alone proved it (tokenizing 8 MB blocks the event loop for seconds).
    assert.match(json.error.message, /resulted in at least \d+ tokens/);
  });

  it("300,000 chat messages (under a raised --max-messages) are rendered, then refused before tokenizing", async () => {
    const messages = Array.from({ length: 300_000 }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: `hello there ${i}` }));
    const { order, status, json } = await withHealthAlongside("/v1/chat/completions", { model: "stories260k-chat", messages, max_tokens: 4 });
    assert.deepEqual(order, ["health", "health", "huge", "health"]);
    assert.equal(status, 400, JSON.stringify(json).slice(0, 500));
    assert.equal(json.error.code, "context_length_exceeded");
    assert.match(json.error.message, /at least \d+ tokens/);
  });

  it("a prompt that fits is tokenized and answered as before", async () => {
    const r = await postJson(`${server.url}/v1/completions`, { model: "stories260k", prompt: "Once upon a time", max_tokens: 3, temperature: 0 });
    assert.equal(r.status, 200);
    assert.equal(r.json.usage.completion_tokens, 3);
  });
});

describe("request limits", () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ parallel: 1, maxMessages: 3, bodyLimit: 1024 });
  });
  after(async () => {
    await server.close();
  });
  const messages = (n: number) => Array.from({ length: n }, () => ({ role: "user", content: "hi" }));

  it("more messages than --max-messages get 400 too_many_messages on both APIs", async () => {
    for (const path of ["/v1/chat/completions", "/api/chat"]) {
      const r = await postJson(`${server.url}${path}`, { model: "stories260k-chat", messages: messages(4), stream: false });
      assert.equal(r.status, 400, path);
      const error = r.json.error;
      assert.match(typeof error === "string" ? error : error.message, /4 messages; the server accepts at most 3/, path);
    }
    const ok = await postJson(`${server.url}/v1/chat/completions`, { model: "stories260k-chat", messages: messages(3), max_tokens: 2 });
    assert.equal(ok.status, 200);
  });

  it("a body over --max-body-bytes gets 413 request_too_large", async () => {
    const r = await postJson(`${server.url}/v1/completions`, { model: "stories260k", prompt: "x".repeat(2000) });
    assert.equal(r.status, 413);
    assert.equal(r.json.error.code, "request_too_large");
  });
});

const spawned: ChildProcess[] = [];
const home = tempDir();
after(() => {
  for (const child of spawned) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  home.cleanup();
});

/** Starts a serve command (`argv` before the serve flags); resolves with its listening line. */
async function startServe(command: string, argv: string[], flags: string[]): Promise<{ child: ChildProcess; url: string; port: number }> {
  const child = spawn(command, [...argv, "serve", "--model-path", STORIES_GGUF, STORIES_CHAT_GGUF, "--no-default-locations", "--port", "0", "--json", ...flags], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH, HOME: home.path, SHIMMY_THREADS: "1", SHIMMY_GPU: "off", SHIMMY_NATIVE: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  spawned.push(child);
  let out = "";
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  const line = await new Promise<{ url: string; port: number }>((resolve, reject) => {
    child.stdout!.on("data", (d) => {
      out += d;
      const first = out.split("\n").find((l) => l.includes('"listening"'));
      if (first) resolve(JSON.parse(first));
    });
    child.on("exit", (code) => reject(new Error(`serve exited early with ${code}: ${out}${err}`)));
  });
  return { child, ...line };
}

const exited = (child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve({ code: child.exitCode, signal: child.signalCode }) : new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));

/** Whether something still accepts connections on the port. */
const portOpen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });

/** Starts a stream that outlasts a drain of 0 s (EOS banned, thousands of tokens); resolves once tokens flow, with how it ended. */
async function longStream(url: string): Promise<{ end: Promise<{ ended: "complete" | "cut"; text: string }> }> {
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "stories260k", prompt: "Once upon a time", max_tokens: 4000, stream: true, logit_bias: { "2": -100 } }),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = decoder.decode((await reader.read()).value);
  // Wrapped: an async function returning a promise would wait for it.
  const end = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value);
      }
    } catch {
      return { ended: "cut" as const, text };
    }
    // A stream that ran to its end has a chunk with its finish reason.
    return { ended: /"finish_reason":"(length|stop)"/.test(text) ? ("complete" as const) : ("cut" as const), text };
  })();
  return { end };
}

describe("shutdown", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`${signal} with a generation running past the drain: the stream is cut, the models unload after it stopped, exit 0`, async () => {
      const { child, url } = await startServe(process.execPath, ["--import", "tsx", CLI], ["--drain-timeout", "0", "--parallel", "1", "--ctx-size", "4096"]);
      const stream = await longStream(url);
      const exit = exited(child);
      child.kill(signal);
      const { ended, text } = await stream.end;
      assert.equal(ended, "cut", `the stream ran to its end: ${text.slice(-300)} (${text.length} chars)`);
      assert.ok(text.length > 0);
      assert.deepEqual(await exit, { code: 0, signal: null });
    });
  }
});

describe("the README's serve command", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`\`npm run shimmy -- serve\` stops the server on ${signal} to npm: no orphan, port closed, npm exits 0`, async () => {
      // `npm test` builds first; the command runs the built CLI.
      assert.ok(existsSync(join(REPO_ROOT, "dist", "cli", "shimmy.cjs")), "npm run build made dist/cli/shimmy.cjs");
      const { child, url, port } = await startServe("npm", ["run", "--silent", "shimmy", "--"], []);
      assert.equal((await fetch(`${url}/health`)).status, 200);
      const exit = exited(child);
      child.kill(signal);
      assert.deepEqual(await exit, { code: 0, signal: null });
      assert.equal(await portOpen(port), false, "the server is gone with npm");
    });
  }
});
