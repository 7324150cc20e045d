import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Fastify from "fastify";
import { type Browser, type BrowserContext, type Page, chromium } from "playwright-core";
import type { RunningServer } from "../src/server/server.js";
import { loadWebAssets } from "../src/server/web/assets.js";
import { PROBE_TEXT, registerWeb } from "../src/server/web/routes.js";
import { REPO_ROOT, STORIES_CHAT_GGUF } from "./helpers/paths.js";
import { postJson, startTestServer, until } from "./helpers/server.js";

/**
 * The chat page in a real browser: Debian's Chromium (CI installs it, .ci/run) driven by
 * playwright-core, against a real server. The page is the built one in dist/web (`npm run build`).
 */

const CHROMIUM = process.env.SHIMMY_CHROMIUM ?? "/usr/bin/chromium";
const MODEL = "stories260k-chat";
const ARTIFACTS = join(REPO_ROOT, "test-artifacts");

let browser: Browser;

/**
 * A fresh browser profile (empty localStorage) in the light theme, with the page errors and
 * console errors (CSP violations among them) it reports; `expected` are those a test provokes.
 */
async function openPage(url: string, expected?: RegExp): Promise<{ page: Page; context: BrowserContext; problems: string[] }> {
  const context = await browser.newContext({ colorScheme: "light", viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // 401s are part of the key test; a missing image is the sanitised <img src=x>.
    if (m.type() === "error" && !/status of (401|404)/.test(m.text()) && !expected?.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  await page.goto(url);
  return { page, context, problems };
}

async function setSettings(page: Page, temperature: string, maxTokens: string): Promise<void> {
  await page.getByLabel("Model").selectOption(MODEL);
  await page.getByLabel("Temperature").fill(temperature);
  await page.getByLabel("Max tokens").fill(maxTokens);
}

async function send(page: Page, text: string): Promise<void> {
  await page.getByLabel("Message").fill(text);
  await page.getByRole("button", { name: "Send" }).click();
}

/** An item of the page's localStorage (this file is typed without the DOM, hence the cast). */
const stored = (page: Page, key: string): Promise<string | null> => page.evaluate((k) => (globalThis as any).localStorage.getItem(k), key);

const lastAnswer = (page: Page) => page.locator(".message.assistant").last();
const collapse = (s: string): string => s.replace(/\s+/g, " ").trim();

before(() => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}. The web UI test drives Debian's chromium (apt-get install chromium; .ci/run installs it) or the browser SHIMMY_CHROMIUM names.`);
  }
  if (!existsSync(join(REPO_ROOT, "dist", "web", "index.html"))) throw new Error("dist/web is not built: run `npm run build` first.");
});

describe("web UI", () => {
  let server: RunningServer;

  before(async () => {
    // A context of 2048 leaves a long answer running for seconds: time to press Stop.
    server = await startTestServer({ ctxSize: 2048 });
    browser = await chromium.launch({ executablePath: CHROMIUM });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it("GET / is the page for browsers and Ollama's plain-text probe for everyone else", async () => {
    for (const accept of [undefined, "*/*", "application/json"]) {
      const res = await fetch(`${server.url}/`, { headers: accept === undefined ? {} : { accept } });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type")!, /^text\/plain/);
      assert.equal(await res.text(), PROBE_TEXT);
    }
    const page = await fetch(`${server.url}/`, { headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" } });
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type")!, /^text\/html/);
    assert.match(page.headers.get("content-security-policy")!, /default-src 'self'/);
    assert.doesNotMatch(page.headers.get("content-security-policy")!, /unsafe-inline/);
    assert.equal(page.headers.get("x-content-type-options"), "nosniff");
    assert.match(page.headers.get("vary")!, /Accept/);
    const html = await page.text();
    assert.doesNotMatch(html, /<script>|<script [^>]*>[^<]/, "no inline script");
    const script = /<script type="module" src="(\/ui\/[^"]+\.js)">/.exec(html)?.[1];
    assert.ok(script, html);
    const asset = await fetch(`${server.url}${script}`);
    assert.equal(asset.status, 200);
    assert.match(asset.headers.get("content-type")!, /^text\/javascript/);
    assert.match(asset.headers.get("cache-control")!, /immutable/);
    await asset.arrayBuffer();
    const again = await fetch(`${server.url}${script}`, { headers: { "if-none-match": asset.headers.get("etag")! } });
    assert.equal(again.status, 304);
    assert.equal((await fetch(`${server.url}/ui/missing.js`)).status, 404);
  });

  it("streams the model's answer, equal to the API's greedy answer, with the server's measured counts", async () => {
    const question = "Tell me a story about a cat.";
    const api = await postJson(`${server.url}/v1/chat/completions`, { model: MODEL, messages: [{ role: "user", content: question }], temperature: 0, max_tokens: 40 });
    assert.equal(api.status, 200);
    const expected: string = api.json.choices[0].message.content;
    assert.ok(expected.length > 0);

    const { page, context, problems } = await openPage(server.url);
    await setSettings(page, "0", "40");
    await send(page, question);
    const stats = lastAnswer(page).locator(".stats");
    await stats.waitFor();
    assert.equal(collapse(await lastAnswer(page).locator(".markdown").innerText()), collapse(expected));
    const conversations = JSON.parse((await stored(page, "shimmy.conversations"))!);
    assert.equal(conversations[0].messages[1].content, expected, "the raw answer is kept as streamed");
    const text = await stats.innerText();
    assert.ok(text.includes(`${api.json.usage.prompt_tokens} prompt tokens`), text);
    assert.ok(text.includes(` ${api.json.usage.completion_tokens} tokens ·`), text);
    assert.match(text, /[\d.]+ tokens\/s/);
    assert.equal(await page.getByRole("button", { name: "Send" }).isVisible(), true);

    // Kept in localStorage: after a reload the conversation is in the list and opens again.
    await page.reload();
    const entry = page.getByRole("navigation", { name: "Conversations" }).getByRole("button", { name: question, exact: true });
    await entry.click();
    assert.equal(collapse(await lastAnswer(page).locator(".markdown").innerText()), collapse(expected));
    assert.equal(await page.locator(".message.user").innerText(), question);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "web-ui.png") });

    // Deleted, it is gone from the list and from storage.
    await page.getByRole("button", { name: `Delete ${question}` }).click();
    assert.equal(await entry.count(), 0);
    assert.deepEqual(JSON.parse((await stored(page, "shimmy.conversations"))!), []);
    assert.deepEqual(problems, []);
    await context.close();
  });

  it("Stop ends a long answer: it stops growing, the server frees the slot, the page is ready again", async () => {
    const { page, context, problems } = await openPage(server.url);
    await setSettings(page, "0", "2000");
    await send(page, "Tell me a long story.");
    const answer = lastAnswer(page).locator(".markdown");
    await page.waitForFunction(() => ((globalThis as any).document.querySelector(".message.assistant .markdown")?.textContent ?? "").length > 20);
    await page.getByRole("button", { name: "Stop" }).click();
    await lastAnswer(page).getByText("stopped").waitFor();
    const stoppedAt = await answer.innerText();
    await until(async () => ((await (await fetch(`${server.url}/health`)).json()) as { in_flight: number }).in_flight === 0, "the stopped generation to end");
    await page.waitForTimeout(300);
    assert.equal(await answer.innerText(), stoppedAt, "the answer grew after Stop");
    const completion = await postJson(`${server.url}/v1/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "Tell me a long story." }], temperature: 0, max_tokens: 2000 });
    assert.ok(collapse(stoppedAt).length < collapse(completion.json.choices[0].message.content).length, "Stop came before the answer's end");
    assert.equal(await page.getByRole("button", { name: "Send" }).isVisible(), true);
    assert.equal(await page.getByLabel("Model").isEnabled(), true);
    assert.deepEqual(problems, []);
    await context.close();
  });

  it("the Server tab shows the loaded model, its memory, slots and keep-alive", async () => {
    // The earlier tests loaded the chat model.
    const { page, context, problems } = await openPage(server.url);
    await page.getByRole("tab", { name: "Server" }).click();
    const row = page.getByRole("table", { name: "Loaded models" }).getByRole("row").filter({ hasText: MODEL });
    await row.waitFor();
    const text = await row.innerText();
    assert.match(text, /\d+\.\d MiB/);
    assert.match(text, /0 \/ 2 busy/);
    assert.match(text, /unloads in \d+:\d\d/);
    assert.deepEqual(problems, []);
    await context.close();
  });

  it("renders Markdown but no script: HTML in a message neither runs nor keeps its handlers", async () => {
    // Chromium reports the handler attribute against the CSP as the sanitiser parses it (in an inert document).
    const { page, context, problems } = await openPage(server.url, /Executing inline event handler violates/);
    await setSettings(page, "0", "5");
    await send(page, '**bold** `code` <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> [link](javascript:window.__pwned=3)');
    await lastAnswer(page).locator(".stats").waitFor();
    const user = page.locator(".message.user");
    assert.equal(await user.locator("strong").innerText(), "bold");
    assert.equal(await user.locator("code").innerText(), "code");
    assert.equal(await user.locator("img").count(), 1, "the image is kept");
    assert.equal(await page.locator(".messages [onerror]").count(), 0);
    assert.equal(await page.locator(".messages script").count(), 0);
    assert.equal(await user.locator("a").getAttribute("href"), null);
    assert.equal(await page.evaluate(() => (globalThis as any).__pwned), undefined);
    assert.deepEqual(problems, []);
    await context.close();
  });
});

describe("web UI not built", () => {
  it("browsers get a plain-text 404 saying how to build it; the probe is unchanged", async () => {
    const assets = loadWebAssets(join(REPO_ROOT, "no-such-build"));
    assert.equal(assets, undefined);
    const app = Fastify();
    registerWeb(app, assets);
    const page = await app.inject({ url: "/", headers: { accept: "text/html" } });
    assert.equal(page.statusCode, 404);
    assert.match(page.headers["content-type"] as string, /^text\/plain/);
    assert.match(page.body, /not built: run `npm run build`/);
    const probe = await app.inject({ url: "/" });
    assert.equal(probe.statusCode, 200);
    assert.equal(probe.body, PROBE_TEXT);
    await app.close();
  });
});

describe("web UI with API keys", () => {
  const KEY = "sk-web-ui-test";
  let server: RunningServer;

  before(async () => {
    server = await startTestServer({ modelPaths: [STORIES_CHAT_GGUF], apiKeys: [KEY] });
    browser = await chromium.launch({ executablePath: CHROMIUM });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it("loads without a key, asks for it on a 401, then sends it", async () => {
    assert.equal((await fetch(`${server.url}/v1/models`)).status, 401);
    assert.equal(await (await fetch(`${server.url}/`)).text(), PROBE_TEXT);
    const { page, context, problems } = await openPage(server.url);
    const dialog = page.getByRole("dialog", { name: "API key" });
    await dialog.waitFor();
    await dialog.getByLabel("API key").fill(KEY);
    await dialog.getByRole("button", { name: "Use key" }).click();
    await setSettings(page, "0", "8");
    await send(page, "Hello");
    await lastAnswer(page).locator(".stats").waitFor();
    assert.equal(await stored(page, "shimmy.apiKey"), KEY);
    assert.equal(await dialog.count(), 0);
    assert.deepEqual(problems, []);
    await context.close();
  });
});
