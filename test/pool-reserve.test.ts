import assert from "node:assert/strict";
import { pbkdf2 } from "node:crypto";
import { stat } from "node:fs";
import { describe, it } from "node:test";
import { loadConfig } from "../src/config/config.js";
import { createModelPool } from "../src/engine/create-pool.js";
import { libuvPoolSize, poolThreadReserve, PoolThreadReserve } from "../src/engine/pool-reserve.js";
import { STORIES_CHAT_GGUF, STORIES_GGUF } from "./helpers/paths.js";

/** Queues a long pool job, then a short one; says which finished first. */
function slowThenQuick(): Promise<string[]> {
  const order: string[] = [];
  return new Promise((resolve) => {
    const done = (name: string) => {
      order.push(name);
      if (order.length === 2) resolve(order);
    };
    pbkdf2("password", "salt", 300_000, 32, "sha256", () => done("slow"));
    stat(".", () => done("quick"));
  });
}

describe("libuv pool thread reserve", () => {
  const spare = libuvPoolSize(process.env.UV_THREADPOOL_SIZE) - 1;

  it("parks all pool threads but one while held, lends one to a borrower, and frees them all on drop", { skip: spare < 1 && "this process's libuv pool has one thread" }, async () => {
    const reserve = new PoolThreadReserve(spare);
    assert.deepEqual(await slowThenQuick(), ["quick", "slow"], "unparked, the short job runs beside the long one");

    reserve.hold();
    let held = true;
    try {
      await reserve.ready();
      assert.equal(reserve.parked, spare);
      assert.deepEqual(await slowThenQuick(), ["slow", "quick"], "one free thread: the short job waits for the long one");

      const giveBack = reserve.borrow();
      assert.equal(reserve.parked, spare - 1);
      assert.deepEqual(await slowThenQuick(), ["quick", "slow"], "the borrowed thread runs the short job");
      giveBack();
      giveBack(); // a second call gives nothing back twice
      assert.equal(reserve.parked, spare);
      assert.deepEqual(await slowThenQuick(), ["slow", "quick"]);

      reserve.drop();
      held = false;
      assert.equal(reserve.parked, 0);
      // The test process can only end if every parked read was released.
      assert.deepEqual(await slowThenQuick(), ["quick", "slow"]);
    } finally {
      if (held) reserve.drop();
    }
  });

  it("the model pool keeps the threads parked while a model is loaded and lends one to each load", { skip: spare < 1 && "this process's libuv pool has one thread" }, async () => {
    const config = loadConfig({ modelPaths: [STORIES_GGUF, STORIES_CHAT_GGUF], scanDefaultLocations: false, threads: 1, gpu: false, parallel: 1 }, { HOME: "/nonexistent" });
    const pool = createModelPool(config);
    const reserve = poolThreadReserve();
    try {
      assert.equal(reserve.parked, 0, "nothing is parked before a model is loaded");
      const a = await pool.acquire("stories260k");
      await reserve.ready();
      assert.equal(reserve.parked, spare);
      const loadingB = pool.acquire("stories260k-chat");
      assert.equal(reserve.parked, spare - 1, "the load of a second model runs on a thread of its own");
      const b = await loadingB;
      assert.equal(reserve.parked, spare);
      const { text } = await b.model.complete(await b.model.prepare({ model: "stories260k-chat", input: { kind: "text", text: "Once" }, sampling: { temperature: 0 }, maxTokens: 8, stop: [] }));
      assert.ok(text.length > 0);
      a.release();
      b.release();
      assert.equal(await pool.unload("stories260k"), true);
      assert.equal(reserve.parked, spare, "one model is still loaded");
      assert.equal(await pool.unload("stories260k-chat"), true);
      assert.equal(reserve.parked, 0, "released once no model is loaded");
    } finally {
      await pool.close();
    }
  });

  it("parks nothing when the pool has no thread to spare", async () => {
    const reserve = new PoolThreadReserve(0);
    reserve.hold();
    await reserve.ready();
    reserve.borrow();
    assert.equal(reserve.parked, 0);
    reserve.drop();
  });

  it("reads the pool size as libuv does", () => {
    assert.equal(libuvPoolSize(undefined), 4);
    assert.equal(libuvPoolSize("2"), 2);
    assert.equal(libuvPoolSize("0"), 1);
    assert.equal(libuvPoolSize("junk"), 1);
    assert.equal(libuvPoolSize("5000"), 1024);
  });
});
