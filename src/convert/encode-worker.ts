/**
 * An encode thread: takes the next block index from a shared counter, converts that block with
 * its own positioned reads and writes (block-runner.ts), and reports it done; several threads
 * (and the calling thread, while they start) share one list of blocks without the main thread
 * handing each one over. A thread serves one conversion after another.
 */
import { parentPort, workerData } from "node:worker_threads";
import { type Block, BlockRunner } from "./block-runner.js";

/** The work a conversion posts to each thread: `claim[0]` is the next unclaimed block, `claim[1]` set means stop. */
export interface BlocksJob {
  output: string;
  blocks: Block[];
  srcBytes: number;
  outBytes: number;
  claim: Int32Array;
}

export type BlocksReply = { done: number } | { finished: true } | { error: string };

const port = parentPort!;
// Tells the calling thread, which converts blocks itself until then, that this thread is up.
Atomics.add((workerData as { ready: Int32Array }).ready, 0, 1);
port.on("message", ({ output, blocks, srcBytes, outBytes, claim }: BlocksJob) => {
  let runner: BlockRunner | undefined;
  try {
    runner = new BlockRunner(output, srcBytes, outBytes);
    for (let i = Atomics.add(claim, 0, 1); i < blocks.length && Atomics.load(claim, 1) === 0; i = Atomics.add(claim, 0, 1)) {
      runner.run(blocks[i]!);
      port.postMessage({ done: i } satisfies BlocksReply);
    }
    port.postMessage({ finished: true } satisfies BlocksReply);
  } catch (e) {
    Atomics.store(claim, 1, 1);
    port.postMessage({ error: (e as Error).message ?? String(e) } satisfies BlocksReply);
  } finally {
    runner?.close();
  }
});
