import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Config, type ConfigOverrides, loadConfig } from "../../src/config/config.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { STORIES, STORIES_CHAT_GGUF, STORIES_GGUF } from "./paths.js";

export interface Golden {
  greedy: { prompt: string; promptIdsWithBos: number[]; maxTokens: number; ids: number[]; text: string }[];
  fromBos200: { ids: number[]; text: string };
  nextTokenTop5: { promptIdsWithBos: number[]; top: { id: number; piece: string; p: number }[] };
  tokenization: { text: string; ids: number[] }[];
  chat: { messages: { role: "system" | "user" | "assistant"; content: string }[]; rendered: string; renderedIds: number[] };
}

export const golden: Golden = JSON.parse(readFileSync(join(STORIES, "golden.json"), "utf8"));

/**
 * A real server on 127.0.0.1, an OS-chosen port, serving the two stories260K GGUFs with 1 thread.
 * The prompt cache is off unless asked for (with a folder of the test's own): saved states would
 * carry cached tokens from one test into another.
 */
export async function startTestServer(overrides: ConfigOverrides = {}, tweak: (c: Config) => void = () => undefined): Promise<RunningServer> {
  const config = loadConfig(
    { modelPaths: [STORIES_GGUF, STORIES_CHAT_GGUF], scanDefaultLocations: false, threads: 1, gpu: false, port: 0, parallel: 2, promptCache: false, ...overrides },
    { HOME: "/nonexistent-shimmy-test-home" },
  );
  tweak(config);
  return startServer(config, "test");
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

/** Reads an SSE response fully: the parsed JSON events and whether [DONE] ended it. */
export async function readSse(res: Response): Promise<{ events: any[]; done: boolean; raw: string }> {
  const raw = await res.text();
  const events: unknown[] = [];
  let done = false;
  for (const block of raw.split("\n\n")) {
    const line = block.trim();
    if (!line.startsWith("data: ")) continue;
    const data = line.slice(6);
    if (data === "[DONE]") done = true;
    else events.push(JSON.parse(data));
  }
  return { events, done, raw };
}

/** Polls `check` every 10 ms for up to 5 s (a state the server reaches asynchronously). */
export async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}
