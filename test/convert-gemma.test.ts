import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { LlamaModel } from "node-llama-cpp";
import { convertHfFolder } from "../src/convert/convert.js";
import { metaString, readGguf } from "../src/formats/gguf.js";
import type { SafetensorsWriteTensor } from "../src/formats/safetensors-writer.js";
import { type GemmaConfig, GemmaReference } from "./helpers/gemma-reference.js";
import { copyHfFolder, randomTensor } from "./helpers/hf-fixtures.js";
import { greedy, loadGguf } from "./helpers/llama-run.js";
import { STORIES_HF, tempDir } from "./helpers/paths.js";

const tmp = tempDir();
after(() => tmp.cleanup());

/**
 * Tiny random Gemma models on the stories260K tokenizer (SentencePiece-style BPE with byte
 * fallback, vocab 512, BOS 1). head_dim 32 with 4 heads (128 ≠ hidden 64) and GQA 4:2.
 * The weights are large enough that every Gemma-specific step changes the answer: each test
 * first shows, on the reference alone, that dropping the feature moves the next-token
 * distribution far beyond the tolerance used against llama.cpp.
 */
const DIMS = { hidden_size: 64, intermediate_size: 128, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32, vocab_size: 512, max_position_embeddings: 512, rms_norm_eps: 1e-6, torch_dtype: "float32", hidden_activation: "gelu_pytorch_tanh", bos_token_id: 1, eos_token_id: 2 };

/** Prompts of 10–12 tokens: longer than the sliding windows below. */
const PROMPTS = [
  [1, 403, 407, 261, 378, 432, 383, 286, 261, 376],
  [1, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267],
  [1, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433],
];
const GENERATED = 12;
/**
 * Next-token log-probabilities of the top 5 may differ by this much (0.5% in probability):
 * llama.cpp keeps K/V in F16 and tabulates GELU over F16 inputs.
 */
const LOGPROB_TOLERANCE = 5e-3;
const TOP = 5;

function gemmaTensors(layers: number, qkNorms: boolean): SafetensorsWriteTensor[] {
  const { hidden_size: d, intermediate_size: ff, num_attention_heads: heads, num_key_value_heads: kv, head_dim: hd, vocab_size: vocab } = DIMS;
  let seed = 7;
  // Embedding rows of ±0.5 give raw logits up to about 13, which a final soft-cap of 8 bends;
  // projections of ±0.3 give attention scores well past a cap of 1.5. Norm weights w of ±0.5
  // scale by 1 + w.
  const t = (name: string, shape: number[], scale = 0.3) => randomTensor(name, shape, seed++, scale);
  const tensors = [t("model.embed_tokens.weight", [vocab, d], 0.5), t("model.norm.weight", [d], 0.5)];
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}`;
    tensors.push(
      t(`${p}.self_attn.q_proj.weight`, [heads * hd, d]), t(`${p}.self_attn.k_proj.weight`, [kv * hd, d]),
      t(`${p}.self_attn.v_proj.weight`, [kv * hd, d]), t(`${p}.self_attn.o_proj.weight`, [d, heads * hd]),
      t(`${p}.mlp.gate_proj.weight`, [ff, d]), t(`${p}.mlp.up_proj.weight`, [ff, d]), t(`${p}.mlp.down_proj.weight`, [d, ff]),
      ...["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"].map((n) => t(`${p}.${n}.weight`, [d], 0.5)),
    );
    if (qkNorms) tensors.push(t(`${p}.self_attn.q_norm.weight`, [hd], 0.5), t(`${p}.self_attn.k_norm.weight`, [hd], 0.5));
  }
  return tensors;
}

function gemmaFolder(label: string, config: Record<string, unknown>, qkNorms: boolean): string {
  return copyHfFolder(STORIES_HF, join(tmp.path, label), { config: { ...DIMS, ...config }, tensors: () => gemmaTensors(config.num_hidden_layers as number, qkNorms) });
}

const topIds = (probs: Float64Array): number[] => [...probs.keys()].sort((a, b) => probs[b]! - probs[a]!).slice(0, TOP);

/** The largest log-probability difference over `a`'s top tokens. */
function logProbGap(a: Float64Array, b: Float64Array): number {
  return Math.max(...topIds(a).map((id) => Math.abs(Math.log(a[id]!) - Math.log(b[id]!))));
}

/** Each override, applied to the reference alone, must move the top log-probabilities far beyond the tolerance. */
function assertFeaturesMatter(dir: string, features: Record<string, Partial<GemmaConfig>>): void {
  const base = new GemmaReference(dir);
  for (const [feature, overrides] of Object.entries(features)) {
    const without = new GemmaReference(dir, overrides);
    const moved = Math.max(...PROMPTS.map((p) => logProbGap(base.nextTokenProbabilities(p), without.nextTokenProbabilities(p))));
    assert.ok(moved > 10 * LOGPROB_TOLERANCE, `${feature} changes the next-token log-probabilities (by ${moved.toFixed(4)})`);
  }
}

/** llama.cpp on the converted GGUF against the reference: greedy ids equal, next-token probabilities close. */
async function assertMatchesReference(model: LlamaModel, reference: GemmaReference): Promise<void> {
  for (const prompt of PROMPTS) {
    const want = reference.greedy(prompt, GENERATED);
    const got = await greedy(model, prompt, GENERATED);
    assert.deepEqual(got.ids, want.ids, `greedy continuation of ${JSON.stringify(prompt)} (reference's smallest top-2 logit gap ${want.minMargin.toFixed(4)})`);
    const probs = reference.nextTokenProbabilities(prompt);
    assert.deepEqual(got.top.map((t) => t.id), topIds(probs), "top-5 next tokens");
    for (const { id, p } of got.top) assert.ok(Math.abs(Math.log(p) - Math.log(probs[id]!)) < LOGPROB_TOLERANCE, `p(${id}) ${p} vs reference ${probs[id]}`);
  }
}

describe("Gemma 2 (Gemma2ForCausalLM) → GGUF", () => {
  const config = {
    architectures: ["Gemma2ForCausalLM"], model_type: "gemma2", num_hidden_layers: 4, rope_theta: 10000,
    // Layers 0 and 2 slide over the last 4 positions; the prompts are 10–12 tokens long.
    sliding_window: 4,
    attn_logit_softcapping: 1.5,
    final_logit_softcapping: 8,
    // ≠ head_dim: llama.cpp scales by 1/√head_dim, so the converter must fold in the difference.
    query_pre_attn_scalar: 8,
  };

  it("writes the gemma2 keys and tensors, with norms as 1 + w", async () => {
    const dir = gemmaFolder("gemma2-meta", config, false);
    const g = join(tmp.path, "gemma2-meta.gguf");
    const r = await convertHfFolder(dir, g);
    assert.equal(r.architecture, "gemma2");
    const f = readGguf(g);
    assert.equal(metaString(f, "general.architecture"), "gemma2");
    assert.equal(f.metadata.get("gemma2.attention.sliding_window"), 4);
    assert.equal(f.metadata.get("gemma2.attention.sliding_window_pattern"), 2);
    assert.equal(f.metadata.get("gemma2.attn_logit_softcapping"), 1.5);
    assert.equal(f.metadata.get("gemma2.final_logit_softcapping"), 8);
    assert.equal(f.metadata.get("gemma2.attention.key_length"), 32);
    const names = new Set(f.tensors.map((t) => t.name));
    for (const n of ["blk.3.post_attention_norm.weight", "blk.3.ffn_norm.weight", "blk.3.post_ffw_norm.weight", "blk.0.attn_q.weight"]) assert.ok(names.has(n), n);
    assert.ok(!names.has("output.weight"), "tied: no output.weight");
  });

  it("llama.cpp runs the converted model like the float64 reference", async () => {
    const dir = gemmaFolder("gemma2", config, false);
    assertFeaturesMatter(dir, {
      "the sliding window": { sliding_window: 10_000 },
      "attention soft-capping": { attn_logit_softcapping: null },
      "final logit soft-capping": { final_logit_softcapping: null },
      "query_pre_attn_scalar": { query_pre_attn_scalar: 32 },
    });
    const g = join(tmp.path, "gemma2.gguf");
    await convertHfFolder(dir, g);
    const model = await loadGguf(g);
    try {
      await assertMatchesReference(model, new GemmaReference(dir));
    } finally {
      await model.dispose();
    }
  });
});

describe("Gemma 3 text (Gemma3ForCausalLM) → GGUF", () => {
  const config = {
    architectures: ["Gemma3ForCausalLM"], model_type: "gemma3_text", num_hidden_layers: 4,
    // Layers 0, 1, 3 slide over the last 3 positions with RoPE base 100; layer 2 is global with
    // base 10000, linearly scaled by 4.
    sliding_window: 3,
    sliding_window_pattern: 3,
    rope_theta: 10000,
    rope_local_base_freq: 100,
    rope_scaling: { rope_type: "linear", factor: 4 },
    final_logit_softcapping: 8,
    attn_logit_softcapping: null,
    // q is RMS-normalised per head, so the scalar's correction rides on q_norm's weight.
    query_pre_attn_scalar: 16,
  };

  it("writes the gemma3 keys and tensors", async () => {
    const dir = gemmaFolder("gemma3-meta", config, true);
    const g = join(tmp.path, "gemma3-meta.gguf");
    await convertHfFolder(dir, g);
    const f = readGguf(g);
    assert.equal(metaString(f, "general.architecture"), "gemma3");
    assert.equal(f.metadata.get("gemma3.attention.sliding_window"), 3);
    assert.equal(f.metadata.get("gemma3.attention.sliding_window_pattern"), 3);
    assert.equal(f.metadata.get("gemma3.rope.freq_base"), 10000);
    assert.equal(f.metadata.get("gemma3.rope.freq_base_swa"), 100);
    assert.equal(metaString(f, "gemma3.rope.scaling.type"), "linear");
    assert.equal(f.metadata.get("gemma3.rope.scaling.factor"), 4);
    assert.equal(f.metadata.get("gemma3.final_logit_softcapping"), 8);
    assert.ok(f.tensors.some((t) => t.name === "blk.2.attn_q_norm.weight"));
  });

  it("llama.cpp runs the converted model like the float64 reference", async () => {
    const dir = gemmaFolder("gemma3", config, true);
    assertFeaturesMatter(dir, {
      "the sliding window": { sliding_window: 10_000 },
      "the local RoPE base": { rope_local_base_freq: 10000 },
      "the global rope scaling": { rope_scaling: null },
      "final logit soft-capping": { final_logit_softcapping: null },
      "query_pre_attn_scalar": { query_pre_attn_scalar: 32 },
    });
    const g = join(tmp.path, "gemma3.gguf");
    await convertHfFolder(dir, g);
    const model = await loadGguf(g);
    try {
      await assertMatchesReference(model, new GemmaReference(dir));
    } finally {
      await model.dispose();
    }
  });
});
