import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { RunningServer } from "../src/server/server.js";
import { AGENT_MODEL, startAgentServer } from "./helpers/agents.js";
import { REPO_ROOT, tempDir } from "./helpers/paths.js";

/** compatcanary 0.2.2's probes per profile (src/probes.js); `modern` adds the Responses API. */
const CHAT_PROBES = ["models.list", "chat.basic", "chat.streaming", "chat.tool_call", "chat.structured_output"];
/** The Responses API (/v1/responses) probes. */
const RESPONSES_PROBES = ["responses.basic", "responses.streaming"];

interface ProbeResult {
  id: string;
  status: "pass" | "warn" | "fail";
  summary: string;
  error?: unknown;
}

let server: RunningServer;
const tmp = tempDir("shimmy-compatcanary-");
before(async () => {
  server = await startAgentServer();
});
after(async () => {
  await server.close();
  tmp.cleanup();
});

/** Runs compatcanary's CLI on one profile against the server; resolves with every probe's result. */
async function scan(profile: "chat" | "modern"): Promise<ProbeResult[]> {
  const report = join(tmp.path, `${profile}.json`);
  // Asynchronous: the server under test runs in this process and must keep answering.
  const child = spawn(
    process.execPath,
    [join(REPO_ROOT, "node_modules", "compatcanary", "src", "cli.js"), "scan", "--base-url", `${server.url}/v1`, "--model", AGENT_MODEL, "--profile", profile, "--format", "json", "--output", report, "--fail-on", "never"],
    { env: { PATH: process.env.PATH, OPENAI_API_KEY: "unused" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  assert.equal(code, 0, stderr);
  return JSON.parse(readFileSync(report, "utf8")).results;
}

/** Asserts each probe passed (a warning is not a pass), showing the failing probes' evidence. */
function assertAllPass(results: ProbeResult[], ids: string[]): void {
  const failing = results.filter((r) => ids.includes(r.id) && r.status !== "pass");
  assert.deepEqual(failing, [], "every probe passes");
}

/** The run failed only because the model's sampled answer to responses.basic was empty. */
function onlyEmptyAnswer(results: ProbeResult[]): boolean {
  const failing = results.filter((r) => r.status !== "pass");
  return failing.length === 1 && failing[0]!.id === "responses.basic" && failing[0]!.summary === "Expected text in the response output";
}

describe("compatcanary 0.2.2 against Shimmy (tiny-agent)", () => {
  it("chat profile: every probe passes", async () => {
    const results = await scan("chat");
    assert.deepEqual(results.map((r) => r.id).sort(), [...CHAT_PROBES].sort());
    assertAllPass(results, CHAT_PROBES);
  });

  it("modern profile: every probe passes, the Responses API ones included", async () => {
    const probes = [...CHAT_PROBES, ...RESPONSES_PROBES];
    let results = await scan("modern");
    // responses.basic samples at temperature 1 and needs some text, and tiny-agent's first token
    // ends its answer with probability ~0.12 there: an empty answer is the model's, not the
    // server's. Only that one failure is run again, a few times.
    for (let retry = 0; retry < 4 && onlyEmptyAnswer(results); retry++) results = await scan("modern");
    assert.deepEqual(results.map((r) => r.id).sort(), [...probes].sort());
    assertAllPass(results, probes);
  });
});
