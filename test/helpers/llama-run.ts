import { type LlamaContextOptions, type LlamaModel, type Token } from "node-llama-cpp";
import { getRuntime } from "../../src/engine/llama.js";

/** Loads a GGUF with node-llama-cpp (1 thread) for direct checks of converted files. */
export async function loadGguf(path: string): Promise<LlamaModel> {
  const llama = await getRuntime({ gpu: false, threads: 1 });
  return llama.loadModel({ modelPath: path });
}

/**
 * Float32 K/V without flash attention: llama.cpp then computes in float32 throughout, so a
 * converted F32 model can be held to a float64 reference far more tightly than the F16 default allows.
 */
export const F32_CONTEXT: Partial<LlamaContextOptions> = { experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32", flashAttention: false };

/** Greedy ids after `prompt` (token ids), and the top-k probabilities of the first step. */
export async function greedy(model: LlamaModel, prompt: number[], maxTokens: number, topK = 5, contextOptions: Partial<LlamaContextOptions> = {}): Promise<{ ids: number[]; top: { id: number; p: number }[] }> {
  const context = await model.createContext({ contextSize: Math.min(1024, model.trainContextSize), threads: 1, ...contextOptions });
  try {
    const sequence = context.getSequence();
    const ids: number[] = [];
    let top: { id: number; p: number }[] = [];
    for await (const step of sequence.evaluateWithMetadata(prompt as Token[], { probabilities: true }, { temperature: 0 })) {
      if (ids.length === 0 && step.probabilities) top = [...step.probabilities.entries()].slice(0, topK).map(([id, p]) => ({ id, p }));
      ids.push(step.token);
      if (ids.length >= maxTokens) break;
    }
    return { ids, top };
  } finally {
    await context.dispose();
  }
}
