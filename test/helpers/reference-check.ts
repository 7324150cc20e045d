import assert from "node:assert/strict";
import type { LlamaContextOptions, LlamaModel } from "node-llama-cpp";
import { greedy } from "./llama-run.js";

/** A float64 reference forward pass, as the converter tests use them (llama-, gemma-, moe-reference.ts). */
export interface ReferenceModel {
  nextTokenLogits(tokens: readonly number[]): Float64Array;
  nextTokenProbabilities(tokens: readonly number[]): Float64Array;
}

/** Prompts of 10–12 token ids within the converter tests' 512-token vocabularies (longer than their sliding windows). */
export const REFERENCE_PROMPTS: readonly number[][] = [
  [1, 403, 407, 261, 378, 432, 383, 286, 261, 376],
  [1, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267],
  [1, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433],
];

/** Greedy continuation of `prompt` by a reference, and the smallest gap between its top two logits on the way. */
export function referenceGreedy(model: Pick<ReferenceModel, "nextTokenLogits">, prompt: readonly number[], maxTokens: number): { ids: number[]; minMargin: number } {
  const tokens = [...prompt];
  const ids: number[] = [];
  let minMargin = Infinity;
  while (ids.length < maxTokens) {
    const logits = model.nextTokenLogits(tokens);
    const order = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]!);
    minMargin = Math.min(minMargin, logits[order[0]!]! - logits[order[1]!]!);
    ids.push(order[0]!);
    tokens.push(order[0]!);
  }
  return { ids, minMargin };
}

/** The `n` most probable token ids. */
export const topIds = (probs: Float64Array, n: number): number[] => [...probs.keys()].sort((a, b) => probs[b]! - probs[a]!).slice(0, n);

/** The largest log-probability difference over `a`'s top `n` tokens. */
export function logProbGap(a: Float64Array, b: Float64Array, n: number): number {
  return Math.max(...topIds(a, n).map((id) => Math.abs(Math.log(a[id]!) - Math.log(b[id]!))));
}

export interface ReferenceCheck {
  prompts: readonly number[][];
  generated: number;
  top: number;
  tolerance: number;
  contextOptions?: Partial<LlamaContextOptions>;
}

/** llama.cpp on a converted GGUF against the reference: greedy ids equal, top next tokens equal, their log-probabilities within the tolerance. */
export async function assertMatchesReference(model: LlamaModel, reference: ReferenceModel, check: ReferenceCheck): Promise<void> {
  for (const prompt of check.prompts) {
    const want = referenceGreedy(reference, prompt, check.generated);
    const got = await greedy(model, prompt, check.generated, check.top, check.contextOptions);
    assert.deepEqual(got.ids, want.ids, `greedy continuation of ${JSON.stringify(prompt)} (reference's smallest top-2 logit gap ${want.minMargin.toFixed(4)})`);
    const probs = reference.nextTokenProbabilities(prompt);
    assert.deepEqual(got.top.map((t) => t.id), topIds(probs, check.top), `top-${check.top} next tokens`);
    for (const { id, p } of got.top) assert.ok(Math.abs(Math.log(p) - Math.log(probs[id]!)) < check.tolerance, `p(${id}) ${p} vs reference ${probs[id]}`);
  }
}
