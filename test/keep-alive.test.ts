import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { loadConfig, parseDuration } from "../src/config/config.js";
import { createModelPool } from "../src/engine/create-pool.js";
import type { ModelPool } from "../src/engine/model-pool.js";
import { STORIES_GGUF } from "./helpers/paths.js";

describe("keep-alive past setTimeout's range (2^31-1 ms, ~24.8 days)", () => {
  let pool: ModelPool;
  before(() => {
    const config = loadConfig({ modelPaths: [STORIES_GGUF], scanDefaultLocations: false, threads: 1, gpu: false, parallel: 1, keepAliveMs: parseDuration("720h") }, { HOME: "/nonexistent" });
    pool = createModelPool(config);
  });
  after(async () => {
    await pool.close();
  });

  it("keeps the model loaded after its request, with the expiry 720h away", async () => {
    const lease = await pool.acquire("stories260k");
    const releasing = Date.now();
    lease.release();
    // An overflowing timer fires after 1 ms; give it ample time to have done so.
    await sleep(200);
    assert.ok(pool.isLoaded("stories260k"), "the model is still loaded");
    const [info] = pool.info();
    assert.ok(info!.expiresAt! >= releasing + 720 * 3_600_000);
  });

  it("a request's longer keep-alive (as Ollama's keep_alive) behaves the same", async () => {
    const lease = await pool.acquire("stories260k", parseDuration("9000h"));
    lease.release();
    await sleep(200);
    assert.ok(pool.isLoaded("stories260k"));
    assert.equal(pool.info()[0]!.keepAliveMs, 9000 * 3_600_000);
  });
});

describe("parseDuration range", () => {
  it("accepts Ollama's durations up to Go's limit and refuses beyond it", () => {
    assert.equal(parseDuration("720h"), 2_592_000_000);
    assert.equal(parseDuration("2562047h"), 2562047 * 3_600_000);
    assert.equal(parseDuration(-1), -1000);
    assert.throws(() => parseDuration("2562048h"), /out of range/);
    assert.throws(() => parseDuration(`${"9".repeat(400)}`), /out of range/);
  });
});
