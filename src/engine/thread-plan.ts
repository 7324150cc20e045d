import type { LlamaContext } from "node-llama-cpp";

export interface ThreadPlan {
  /** Threads for a decode step of a single token: one stream generating. */
  threads: number;
  /** Threads for a step of several tokens: a prompt, or several streams batched together. */
  batchThreads: number;
}

interface AddonContextLike {
  initBatch(size: number): unknown;
  setThreads(threads: number): unknown;
  decodeBatch(): Promise<unknown>;
}

/**
 * llama.cpp's own split (llama-server's -t / -tb): a one-token step is memory-bound and pays
 * little for extra threads, while their spin-waits compete with the HTTP side on a small machine;
 * a many-token step is compute-bound and scales. Measured on 2 cores, 100M Q8_0 model, prebuilt
 * binary: 1 thread for single tokens and 2 for batches matched 1/1 on a single stream and 2/2 on
 * 8 concurrent streams and long prompts. node-llama-cpp sets one thread count per context, so its
 * native context (3.21.1 internal `_ctx`) gets wrapped methods that pick the count from the size
 * of each batch just before it is decoded. Without that internal, batchThreads is used for
 * everything (the context is created with it).
 */
export function applyThreadPlan(context: LlamaContext, plan: ThreadPlan): boolean {
  if (plan.threads === plan.batchThreads) return true;
  const holder = context as unknown as { _ctx?: AddonContextLike };
  const native = holder._ctx;
  if (!native || typeof native.initBatch !== "function" || typeof native.setThreads !== "function" || typeof native.decodeBatch !== "function") return false;
  // Own properties on the native object itself (not a Proxy): node-llama-cpp also hands `_ctx`
  // to native code, which must receive the real object.
  const { initBatch, setThreads, decodeBatch } = native;
  let batchTokens = 0;
  Object.defineProperty(native, "initBatch", {
    configurable: true,
    writable: true,
    value: (size: number) => {
      batchTokens = size;
      return initBatch.call(native, size);
    },
  });
  Object.defineProperty(native, "decodeBatch", {
    configurable: true,
    writable: true,
    value: () => {
      setThreads.call(native, batchTokens === 1 ? plan.threads : plan.batchThreads);
      return decodeBatch.call(native);
    },
  });
  return true;
}
