import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { connect, type Socket } from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";
import WebSocket from "ws";
import { loadConfig } from "../src/config/config.js";
import { hostPolicy } from "../src/server/access.js";
import type { RunningServer } from "../src/server/server.js";
import { tempDir } from "./helpers/paths.js";
import { postJson, startTestServer } from "./helpers/server.js";

const KEYS = ["sk-shimmy-first", "sk-shimmy-second"];

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null, headers: res.headers };
}

/** A GET through node:http, which (unlike fetch) lets the test choose the Host header. */
function getWithHost(port: number, path: string, host: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, headers: { ...headers, host } }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Sends raw bytes and collects everything the server sends until it closes the connection. */
function rawExchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(bytes));
    let out = "";
    socket.on("data", (d) => (out += d.toString("latin1")));
    socket.on("close", () => resolve(out));
    socket.on("error", reject);
  });
}

function statusAndJson(response: string): { status: number; json: any } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1]);
  const body = response.slice(response.indexOf("\r\n\r\n") + 4);
  return { status, json: JSON.parse(body) };
}

function assertOpenAIError(json: any, code: string): void {
  assert.equal(typeof json?.error?.message, "string", JSON.stringify(json));
  assert.equal(json.error.code, code, JSON.stringify(json));
  assert.equal(json.error.param, null);
  assert.equal(typeof json.error.type, "string");
}

function assertOllamaError(json: any): void {
  assert.equal(typeof json?.error, "string", JSON.stringify(json));
  assert.ok(json.error.length > 0);
}

/** Opens /ws/generate: the upgrade's status and body when refused, or the open socket. */
function openWs(url: string, options: WebSocket.ClientOptions): Promise<{ status: number; body: string; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace("http", "ws")}/ws/generate`, options);
    ws.on("open", () => resolve({ status: 101, body: "", ws }));
    ws.on("unexpected-response", (req, res) => {
      let body = "";
      res.on("close", () => req.destroy());
      res.on("data", (d: Buffer) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on("error", reject);
  });
}

async function loadedModels(url: string, headers: Record<string, string> = {}): Promise<number> {
  return (await getJson(`${url}/health`, headers)).json.models.loaded;
}

describe("API keys", () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ apiKeys: KEYS });
  });
  after(async () => {
    await server.close();
  });

  it("without a key every route answers 401 in its API's envelope", async () => {
    // `GET /` and the chat page's files stay open: test/web-ui.test.ts.
    for (const path of ["/v1/models", "/slots", "/v1/nonexistent"]) {
      const res = await getJson(`${server.url}${path}`);
      assert.equal(res.status, 401, path);
      assertOpenAIError(res.json, "invalid_api_key");
      assert.equal(res.headers.get("www-authenticate"), "Bearer");
    }
    const tags = await getJson(`${server.url}/api/tags`);
    assert.equal(tags.status, 401);
    assertOllamaError(tags.json);
    const chat = await postJson(`${server.url}/v1/chat/completions`, { model: "stories260k-chat", messages: [{ role: "user", content: "Hi" }], max_tokens: 2 });
    assert.equal(chat.status, 401);
    assertOpenAIError(chat.json, "invalid_api_key");
    assert.equal(await loadedModels(server.url), 0, "a refused request loads no model");
  });

  it("the right key as Bearer or x-api-key opens every route; a wrong one is 401", async () => {
    assert.equal((await getJson(`${server.url}/v1/models`, { authorization: `Bearer ${KEYS[0]}` })).status, 200);
    assert.equal((await getJson(`${server.url}/api/tags`, { "x-api-key": KEYS[1]! })).status, 200);
    assert.equal((await getJson(`${server.url}/slots`, { authorization: `bearer ${KEYS[1]}` })).status, 200);
    const wrong = await getJson(`${server.url}/v1/models`, { authorization: `Bearer ${KEYS[0]}x` });
    assert.equal(wrong.status, 401);
    assert.match(wrong.json.error.message, /Incorrect API key/);
    assert.equal((await getJson(`${server.url}/api/tags`, { "x-api-key": "sk-shimmy-firs" })).status, 401);
    const chat = await postJson(`${server.url}/v1/chat/completions`, { model: "stories260k-chat", messages: [{ role: "user", content: "Hi" }], max_tokens: 2 }, { authorization: `Bearer ${KEYS[0]}` });
    assert.equal(chat.status, 200, JSON.stringify(chat.json));
  });

  it("the OpenAI SDK passes its key; a wrong key raises its AuthenticationError", async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEYS[1], maxRetries: 0 });
    const models = await client.models.list();
    assert.ok(models.data.length > 0);
    const wrong = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "sk-wrong", maxRetries: 0 });
    await assert.rejects(wrong.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError && e.code === "invalid_api_key");
  });

  it("/health and /v1/health stay open", async () => {
    assert.equal((await getJson(`${server.url}/health`)).status, 200);
    assert.equal((await getJson(`${server.url}/v1/health`)).status, 200);
  });

  it("the WebSocket upgrade needs the key", async () => {
    const refused = await openWs(server.url, {});
    assert.equal(refused.status, 401);
    assertOpenAIError(JSON.parse(refused.body), "invalid_api_key");
    const opened = await openWs(server.url, { headers: { authorization: `Bearer ${KEYS[0]}` } });
    assert.equal(opened.status, 101);
    const frames: any[] = [];
    await new Promise<void>((resolve) => {
      opened.ws!.on("message", (d) => frames.push(JSON.parse(d.toString())));
      opened.ws!.on("close", () => resolve());
      opened.ws!.send(JSON.stringify({ model: "stories260k", prompt: "Once", max_tokens: 3 }));
    });
    assert.equal(frames.at(-1)?.type, "done", JSON.stringify(frames));
  });

  it("preflights are answered without a key", async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, { method: "OPTIONS", headers: { origin: "http://localhost:3000", "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" } });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), "http://localhost:3000");
  });
});

describe("API key file and a closed /health", () => {
  const dir = tempDir();
  let server: RunningServer;
  before(async () => {
    writeFileSync(join(dir.path, "keys"), "# one key per line\n\nsk-from-file\n");
    server = await startTestServer({ apiKeyFile: join(dir.path, "keys"), healthRequiresKey: true });
  });
  after(async () => {
    await server.close();
    dir.cleanup();
  });

  it("keys come from the file; /health needs one", async () => {
    assert.equal((await getJson(`${server.url}/health`)).status, 401);
    assert.equal((await getJson(`${server.url}/health`, { "x-api-key": "sk-from-file" })).status, 200);
    assert.equal((await getJson(`${server.url}/v1/models`, { authorization: "Bearer # one key per line" })).status, 401);
  });

  it("a key file without keys, or a missing one, is an error rather than an open server", () => {
    writeFileSync(join(dir.path, "empty"), "# nothing\n\n");
    assert.throws(() => loadConfig({ apiKeyFile: join(dir.path, "empty") }, {}), /holds no keys/);
    assert.throws(() => loadConfig({}, { SHIMMY_API_KEY_FILE: join(dir.path, "missing") }), /cannot read the API key file/);
    assert.deepEqual(loadConfig({}, { SHIMMY_API_KEY: "a, b,,a" }).apiKeys, ["a", "b"]);
    assert.deepEqual(loadConfig({ apiKeys: ["c"] }, { SHIMMY_API_KEY: "a" }).apiKeys, ["c"], "flags replace the environment");
  });
});

describe("browser origins", () => {
  let server: RunningServer;
  let custom: RunningServer;
  before(async () => {
    server = await startTestServer();
    custom = await startTestServer({ corsOrigins: ["https://app.example", "https://*.tools.example"] });
  });
  after(async () => {
    await server.close();
    await custom.close();
  });

  it("a page from another origin gets 403 on /v1, /api and the WebSocket upgrade", async () => {
    const origin = { origin: "https://evil.example" };
    const models = await getJson(`${server.url}/v1/models`, origin);
    assert.equal(models.status, 403);
    assertOpenAIError(models.json, "origin_not_allowed");
    assert.equal(models.headers.get("access-control-allow-origin"), null);
    const tags = await getJson(`${server.url}/api/tags`, origin);
    assert.equal(tags.status, 403);
    assertOllamaError(tags.json);
    const ws = await openWs(server.url, { origin: "https://evil.example" });
    assert.equal(ws.status, 403);
    assertOpenAIError(JSON.parse(ws.body), "origin_not_allowed");
    assert.equal((await getJson(`${server.url}/v1/models`, { origin: "null" })).status, 403, "the opaque origin is refused");
  });

  it("a text/plain POST to /api/generate from another origin is refused before any generation", async () => {
    const body = JSON.stringify({ model: "stories260k", prompt: "Once", stream: false, options: { num_predict: 2 } });
    const refused = await fetch(`${server.url}/api/generate`, { method: "POST", headers: { "content-type": "text/plain", origin: "https://evil.example" }, body });
    assert.equal(refused.status, 403);
    assertOllamaError(await refused.json());
    assert.equal(await loadedModels(server.url), 0, "no model was loaded for it");
    // The same request from a non-browser caller is served (and loads the model).
    const served = await fetch(`${server.url}/api/generate`, { method: "POST", headers: { "content-type": "text/plain" }, body });
    assert.equal(served.status, 200);
    assert.equal(((await served.json()) as { done: boolean }).done, true);
    assert.equal(await loadedModels(server.url), 1);
  });

  it("local pages and app schemes get CORS headers, streamed responses included", async () => {
    for (const origin of ["http://localhost:5173", "https://127.0.0.1", "http://[::1]:8080", "app://shimmy", "chrome-extension://abcdef", "vscode-webview://x"]) {
      const res = await getJson(`${server.url}/v1/models`, { origin });
      assert.equal(res.status, 200, origin);
      assert.equal(res.headers.get("access-control-allow-origin"), origin);
      assert.match(res.headers.get("vary") ?? "", /origin/i);
    }
    const stream = await fetch(`${server.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json", origin: "http://localhost:5173" }, body: JSON.stringify({ model: "stories260k", prompt: "Once", max_tokens: 3, stream: true }) });
    assert.equal(stream.status, 200);
    assert.equal(stream.headers.get("access-control-allow-origin"), "http://localhost:5173");
    assert.match(await stream.text(), /\[DONE\]/);
  });

  it("answers preflights with the methods, the requested headers and a max-age; refuses other origins' preflights", async () => {
    const requested = "authorization, content-type, x-api-key, x-stainless-os, x-stainless-retry-count";
    const res = await fetch(`${server.url}/v1/chat/completions`, { method: "OPTIONS", headers: { origin: "http://localhost:3000", "access-control-request-method": "POST", "access-control-request-headers": requested } });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), "http://localhost:3000");
    assert.match(res.headers.get("access-control-allow-methods") ?? "", /POST/);
    assert.equal(res.headers.get("access-control-allow-headers"), requested);
    assert.ok(Number(res.headers.get("access-control-max-age")) > 0);
    const refused = await fetch(`${server.url}/api/chat`, { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": "POST" } });
    assert.equal(refused.status, 403);
  });

  it("--cors-origins adds origins and globs to the defaults; * allows any", async () => {
    assert.equal((await getJson(`${custom.url}/v1/models`, { origin: "https://app.example" })).status, 200);
    assert.equal((await getJson(`${custom.url}/v1/models`, { origin: "https://a.tools.example" })).status, 200);
    assert.equal((await getJson(`${custom.url}/v1/models`, { origin: "http://localhost:1234" })).status, 200);
    assert.equal((await getJson(`${custom.url}/v1/models`, { origin: "https://app.example.evil" })).status, 403);
    const any = await startTestServer({ corsOrigins: ["*"] });
    try {
      assert.equal((await getJson(`${any.url}/v1/models`, { origin: "https://whoever.example" })).status, 200);
    } finally {
      await any.close();
    }
  });
});

describe("Host header (DNS rebinding)", () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ allowedHosts: ["shimmy.lan"] });
  });
  after(async () => {
    await server.close();
  });

  it("a foreign name is 403; loopback names, addresses and --allowed-hosts pass", async () => {
    const refused = await getWithHost(server.port, "/v1/models", "evil.example");
    assert.equal(refused.status, 403);
    assertOpenAIError(JSON.parse(refused.body), "host_not_allowed");
    assert.equal((await getWithHost(server.port, "/api/tags", "evil.example:11434")).status, 403);
    for (const host of [`localhost:${server.port}`, `127.0.0.1:${server.port}`, "[::1]:80", "app.localhost", `shimmy.lan:${server.port}`]) {
      assert.equal((await getWithHost(server.port, "/v1/models", host)).status, 200, host);
    }
  });

  it("a page this server served (its origin is the allowed address asked) may call it; other origins stay refused", async () => {
    const host = `shimmy.lan:${server.port}`;
    assert.equal((await getWithHost(server.port, "/v1/models", host, { origin: `http://${host}` })).status, 200);
    assert.equal((await getWithHost(server.port, "/v1/models", host, { origin: "http://other.lan" })).status, 403);
    assert.equal((await getWithHost(server.port, "/v1/models", host, { origin: `http://shimmy.lan:${server.port + 1}` })).status, 403);
    // A name outside the allow-list fails the Host check first, whatever its Origin says.
    assert.equal((await getWithHost(server.port, "/v1/models", "evil.example", { origin: "http://evil.example" })).status, 403);
  });

  it("bound to every interface, IP literals pass and names still need the allow-list", () => {
    const allowed = hostPolicy({ host: "0.0.0.0", allowedHosts: [] });
    assert.equal(allowed("192.168.1.20:11435"), true);
    assert.equal(allowed("[fe80::1]:11435"), true);
    assert.equal(allowed("evil.example:11435"), false);
    const lan = hostPolicy({ host: "192.168.1.20", allowedHosts: ["*.home.arpa"] });
    assert.equal(lan("192.168.1.20:11435"), true);
    assert.equal(lan("10.0.0.1"), false);
    assert.equal(lan("box.home.arpa"), true);
    assert.equal(hostPolicy({ host: "127.0.0.1", allowedHosts: ["*"] })("anything.example"), true);
  });
});

describe("errors before the handlers, and slow clients", () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ headersTimeoutMs: 300, readTimeoutMs: 600 });
  });
  after(async () => {
    await server.close();
  });

  it("bad percent-encoding in the URL: 400 in each API's envelope", async () => {
    const openai = statusAndJson(await rawExchange(server.port, "GET /v1/models%zz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
    assert.equal(openai.status, 400);
    assertOpenAIError(openai.json, "invalid_url");
    const ollama = statusAndJson(await rawExchange(server.port, "GET /api/tags%zz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
    assert.equal(ollama.status, 400);
    assertOllamaError(ollama.json);
  });

  it("headers too large: 431; conflicting Transfer-Encoding and Content-Length: 400", async () => {
    const big = statusAndJson(await rawExchange(server.port, `GET /api/tags HTTP/1.1\r\nHost: localhost\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`));
    assert.equal(big.status, 431);
    assertOllamaError(big.json);
    const framing = statusAndJson(await rawExchange(server.port, "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"));
    assert.equal(framing.status, 400);
    assertOpenAIError(framing.json, "malformed_request");
  });

  /** Writes `head`, then one byte of `drip` every 50 ms until the server closes the socket. */
  function dripUntilClosed(head: string, drip: string): Promise<{ response: string; sent: number }> {
    return new Promise((resolve, reject) => {
      const socket: Socket = connect(server.port, "127.0.0.1");
      let response = "";
      let sent = 0;
      let timer: NodeJS.Timeout | undefined;
      socket.on("connect", () => {
        socket.write(head);
        timer = setInterval(() => {
          if (sent < drip.length) socket.write(drip[sent++]!);
        }, 50);
      });
      socket.on("data", (d) => (response += d));
      socket.on("close", () => {
        clearInterval(timer);
        resolve({ response, sent });
      });
      socket.on("error", reject);
    });
  }

  it("a body sent too slowly is cut with 408", async () => {
    const body = JSON.stringify({ model: "stories260k", prompt: "x".repeat(400) });
    const { response, sent } = await dripUntilClosed(`POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`, body);
    assert.ok(sent < body.length, `closed after ${sent} of ${body.length} body bytes`);
    const { status, json } = statusAndJson(response);
    assert.equal(status, 408);
    assertOpenAIError(json, "request_timeout");
  });

  it("headers sent too slowly are cut with 408", async () => {
    const headers = `X-Padding: ${"p".repeat(400)}\r\n\r\n`;
    // Node does not say which URL an unfinished head named, so this is always OpenAI's envelope.
    const { response, sent } = await dripUntilClosed("GET /v1/models HTTP/1.1\r\nHost: localhost\r\n", headers);
    assert.ok(sent < headers.length, `closed after ${sent} of ${headers.length} header bytes`);
    const { status, json } = statusAndJson(response);
    assert.equal(status, 408);
    assertOpenAIError(json, "request_timeout");
  });

  it("a streamed response outlives the request timeouts", async () => {
    const body = JSON.stringify({ model: "stories260k", prompt: "Once", max_tokens: 200, stream: true });
    const socket = connect(server.port, "127.0.0.1");
    let received = "";
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    socket.on("data", (d) => (received += d));
    await new Promise<void>((resolve) => socket.on("connect", () => resolve()));
    socket.write(`POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await new Promise<void>((resolve) => socket.once("data", () => resolve()));
    // Hold the stream open well past both timeouts (several of Node's timeout checks) before reading on.
    socket.pause();
    await sleep(4 * 600);
    socket.resume();
    await new Promise<void>((resolve, reject) => {
      const check = setInterval(() => {
        if (received.includes("data: [DONE]")) resolve(clearInterval(check));
        else if (socket.destroyed) reject(new Error(`connection closed mid-stream: ${received.slice(-200)}`));
      }, 20);
    });
    assert.match(received, /^HTTP\/1\.1 200/);
    assert.equal(socket.destroyed, false, "the connection was not cut");
    socket.destroy();
    await closed;
  });
});
