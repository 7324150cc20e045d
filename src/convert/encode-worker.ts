/** An encode worker's thread: encodes blocks of rows in place in shared buffers (encode-rows.ts). */
import { parentPort } from "node:worker_threads";
import { encodeRows, type EncodeJob } from "./encode-rows.js";

const port = parentPort!;
port.on("message", (job: EncodeJob) => {
  try {
    encodeRows(job);
    port.postMessage({ ok: true });
  } catch (e) {
    port.postMessage({ ok: false, error: (e as Error).message ?? String(e) });
  }
});
