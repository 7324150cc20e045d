import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { VerdictCache } from "../src/engine/isolation/verdict-cache.js";
import { runCli } from "./helpers/cli.js";
import { emptyHomeEnv } from "./helpers/empty-home.js";
import { STORIES_GGUF, tempDir } from "./helpers/paths.js";

const tmp = tempDir("shimmy-doctor-");
after(() => tmp.cleanup());

interface Report {
  models: { name: string; verdict: string; quantization: string | null; findings: { level: string; message: string; suggestion?: string }[] }[];
  system: { level: string; message: string; suggestion?: string }[];
}

describe("shimmy doctor", () => {
  it("gives each model a verdict: an F32 model, a corrupt file, a file crash isolation refused; and says who holds the port", async () => {
    const dir = join(tmp.path, "models");
    mkdirSync(dir, { recursive: true });
    copyFileSync(STORIES_GGUF, join(dir, "story.gguf"));
    copyFileSync(STORIES_GGUF, join(dir, "crasher.gguf"));
    writeFileSync(join(dir, "broken.gguf"), "not a GGUF file");
    const env = emptyHomeEnv(join(tmp.path, "home"));
    // A verdict as a probe child that aborted leaves it (same cache, same file identity).
    const crasher = realpathSync(join(dir, "crasher.gguf"));
    const st = statSync(crasher);
    new VerdictCache(join(env.SHIMMY_CACHE_DIR!, "model-verdicts.json")).set("k", { file: crasher, size: st.size, mtimeMs: st.mtimeMs, ok: false, reason: "aborted: GGML_ASSERT(x) failed", probedAt: Date.now(), probeMs: 10 });

    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen({ host: "127.0.0.1", port: 0 }, resolve));
    const port = (holder.address() as { port: number }).port;
    let r: ReturnType<typeof runCli>;
    try {
      r = runCli(["doctor", "--json", "--model-dirs", dir, "--no-default-locations", "--port", String(port)], env);
    } finally {
      holder.close();
    }
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    const byName = new Map(report.models.map((m) => [m.name, m]));

    const story = byName.get("story")!;
    assert.equal(story.quantization, "F32");
    assert.equal(story.verdict, "ok");
    const precision = story.findings.find((f) => f.message.startsWith("F32 weights"));
    assert.ok(precision, JSON.stringify(story.findings));
    // 1,185,376 bytes over 292,800 weights at Q8_0's 34 bytes per 32.
    assert.match(precision.message, /3\.8× smaller/);
    assert.match(precision.suggestion ?? "", /^`shimmy quantize \S+story\.gguf OUT\.gguf --type q8_0` makes it 3\.8× smaller$/);
    // 5 layers × 4 KV heads × (8 + 8) × 2 bytes = 640 bytes a token; context 2048 (its metadata) × 4 slots.
    const kv = story.findings.find((f) => f.message.startsWith("context "));
    assert.match(kv?.message ?? "", /^context 2048 × 4 slots needs ~5\.00 MiB of KV cache \(640 B a token\)/);

    const broken = byName.get("broken")!;
    assert.equal(broken.verdict, "unusable");
    assert.match(broken.findings[0]!.message, /^unusable: .*broken\.gguf: not a GGUF file/);

    const refused = byName.get("crasher")!;
    assert.equal(refused.verdict, "unusable");
    assert.ok(refused.findings.some((f) => f.level === "error" && f.message.includes("GGML_ASSERT(x) failed") && f.message.includes("crash isolation")), JSON.stringify(refused.findings));

    const portCheck = report.system.find((f) => f.message.startsWith(`port ${port}`));
    assert.equal(portCheck?.level, "warn");
    assert.match(portCheck!.message, /in use by another program/);
    assert.ok(report.system.some((f) => f.message.startsWith("compute:")), JSON.stringify(report.system));
  });

  it("suggests a smaller --ctx-size when the KV cache does not fit the memory budget", () => {
    const env = { ...emptyHomeEnv(join(tmp.path, "home-2")), SHIMMY_MEMORY_BUDGET_MB: "3" };
    const r = runCli(["doctor", "--json", "--model-path", STORIES_GGUF, "--no-default-locations"], env);
    assert.equal(r.status, 0, r.stderr);
    const story = (JSON.parse(r.stdout) as Report).models[0]!;
    assert.equal(story.verdict, "warn");
    const kv = story.findings.find((f) => f.level === "warn");
    // 3 MiB − 1.13 MiB of weights leaves room for 640 B × 4 slots × 512 tokens, not 1024.
    assert.match(kv?.suggestion ?? "", /--ctx-size 512/);
  });
});
