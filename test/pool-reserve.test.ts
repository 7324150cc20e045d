import assert from "node:assert/strict";
import { pbkdf2 } from "node:crypto";
import { stat } from "node:fs";
import { describe, it } from "node:test";
import { libuvPoolSize, PoolThreadReserve } from "../src/engine/pool-reserve.js";

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
