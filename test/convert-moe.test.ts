import assert from "node:assert/strict";
import { openSync, readSync, closeSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { convertHfFolder } from "../src/convert/convert.js";
import { metaString, readGguf } from "../src/formats/gguf.js";
import type { SafetensorsWriteTensor } from "../src/formats/safetensors-writer.js";
import { asF32, copyHfFolder, randomTensor } from "./helpers/hf-fixtures.js";
import { F32_CONTEXT, loadGguf } from "./helpers/llama-run.js";
import { assertMatchesReference, logProbGap, REFERENCE_PROMPTS } from "./helpers/reference-check.js";
import { type MoeConfig, type MoeOptions, MoeReference } from "./helpers/moe-reference.js";
import { STORIES_HF, tempDir } from "./helpers/paths.js";

const tmp = tempDir();
after(() => tmp.cleanup());

/**
 * Tiny random MoE models on the stories260K tokenizer (vocab 512, BOS 1): 2 layers, 8 experts,
 * top-2, GQA 4:2. Router weights are large (logits spread by a few units) so tokens pick
 * different experts; each test first shows, on the reference alone, that misrouting or a
 * different weighting of the chosen experts moves the next-token distribution far beyond the
 * tolerance used against llama.cpp.
 */
const EXPERTS = 8;
const DIMS = { hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 512, max_position_embeddings: 512, rms_norm_eps: 1e-6, rope_theta: 10000, num_experts_per_tok: 2, hidden_act: "silu", tie_word_embeddings: false, torch_dtype: "float32", bos_token_id: 1, eos_token_id: 2 };

const PROMPTS = REFERENCE_PROMPTS;
const GENERATED = 12;
/**
 * Top-5 next-token log-probabilities may differ by this much. The models run with F32 K/V and
 * no flash attention (F32_CONTEXT), so only float32 rounding separates llama.cpp from the
 * reference; with the F16 defaults the gap is about 1e-2.
 */
const LOGPROB_TOLERANCE = 1e-4;
const TOP = 5;

/** HF names of one family's tensors under `model.layers.N.`. */
interface Layout {
  router: string;
  expert: (e: number) => { gate: string; up: string; down: string };
  expertFfn: number;
  qkNorms: boolean;
  /** Further per-layer tensors: HF name, shape, scale. */
  extra?: (headDim: number) => [string, number[], number][];
}

function moeTensors(layout: Layout, headDim: number): SafetensorsWriteTensor[] {
  const { hidden_size: d, num_attention_heads: heads, num_key_value_heads: kv, vocab_size: vocab } = DIMS;
  const ff = layout.expertFfn;
  let seed = 11;
  const t = (name: string, shape: number[], scale = 0.3) => randomTensor(name, shape, seed++, scale);
  // Norm weights of 1 ± 0.25 keep RMS-normalised activations near unit size.
  const norm = (name: string, n: number) => ({ ...t(name, [n], 0.5), data: Buffer.from(asF32(t(name, [n], 0.5)).map((v) => 1 + v).buffer) });
  const tensors = [t("model.embed_tokens.weight", [vocab, d], 0.5), t("lm_head.weight", [vocab, d], 0.5), norm("model.norm.weight", d)];
  for (let i = 0; i < DIMS.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    tensors.push(
      t(`${p}.self_attn.q_proj.weight`, [heads * headDim, d]), t(`${p}.self_attn.k_proj.weight`, [kv * headDim, d]),
      t(`${p}.self_attn.v_proj.weight`, [kv * headDim, d]), t(`${p}.self_attn.o_proj.weight`, [d, heads * headDim]),
      norm(`${p}.input_layernorm.weight`, d), norm(`${p}.post_attention_layernorm.weight`, d),
      // ±1 router weights on unit-size inputs: logits a few units apart, so the top-2 are clear.
      t(`${p}.${layout.router}`, [EXPERTS, d], 2),
    );
    for (const [name, shape, scale] of layout.extra?.(headDim) ?? []) tensors.push(t(`${p}.${name}`, shape, scale));
    if (layout.qkNorms) tensors.push(norm(`${p}.self_attn.q_norm.weight`, headDim), norm(`${p}.self_attn.k_norm.weight`, headDim));
    for (let e = 0; e < EXPERTS; e++) {
      const n = layout.expert(e);
      tensors.push(t(`${p}.${n.gate}`, [ff, d], 0.6), t(`${p}.${n.up}`, [ff, d], 0.6), t(`${p}.${n.down}`, [d, ff], 0.6));
    }
  }
  return tensors;
}

function moeFolder(label: string, config: Record<string, unknown>, layout: Layout, edit: (t: SafetensorsWriteTensor[]) => SafetensorsWriteTensor[] = (t) => t): string {
  const full = { ...DIMS, ...config };
  const headDim = (full as { head_dim?: number }).head_dim ?? full.hidden_size / full.num_attention_heads;
  return copyHfFolder(STORIES_HF, join(tmp.path, label), { config: full, tensors: () => edit(moeTensors(layout, headDim)) });
}


/** On the reference alone: tokens spread over the experts, and each change moves the answer far beyond the tolerance. */
function assertRoutingMatters(dir: string, changes: Record<string, { config?: Partial<MoeConfig>; options?: MoeOptions }>): void {
  const base = new MoeReference(dir);
  const probs = PROMPTS.map((p) => base.nextTokenProbabilities(p));
  for (const [l, chosen] of base.chosen.entries()) assert.ok(chosen.size >= EXPERTS - 2, `layer ${l} routes the prompts' tokens to ${chosen.size} of ${EXPERTS} experts`);
  for (const [change, { config, options }] of Object.entries(changes)) {
    const other = new MoeReference(dir, config, options);
    const moved = Math.max(...PROMPTS.map((p, i) => logProbGap(probs[i]!, other.nextTokenProbabilities(p), TOP)));
    assert.ok(moved > 100 * LOGPROB_TOLERANCE, `${change} changes the next-token log-probabilities (by ${moved.toFixed(4)})`);
  }
}

/** The converted GGUF against the reference (F32 K/V: see LOGPROB_TOLERANCE). */
async function assertGgufMatchesReference(gguf: string, reference: MoeReference): Promise<void> {
  const model = await loadGguf(gguf);
  try {
    await assertMatchesReference(model, reference, { prompts: PROMPTS, generated: GENERATED, top: TOP, tolerance: LOGPROB_TOLERANCE, contextOptions: F32_CONTEXT });
  } finally {
    await model.dispose();
  }
}

/** One expert's slice of a stacked F32 GGUF tensor. */
function expertSlice(path: string, tensor: string, expert: number): Float32Array {
  const f = readGguf(path);
  const info = f.tensors.find((t) => t.name === tensor)!;
  assert.equal(info.typeName, "F32");
  const per = info.elements / info.dims.at(-1)!;
  const buf = Buffer.alloc(per * 4);
  const fd = openSync(path, "r");
  try {
    readSync(fd, buf, 0, buf.length, f.dataOffset + info.offset + expert * per * 4);
  } finally {
    closeSync(fd);
  }
  return new Float32Array(buf.buffer, buf.byteOffset, per);
}

const QWEN3_LAYOUT: Layout = {
  router: "mlp.gate.weight",
  expert: (e) => ({ gate: `mlp.experts.${e}.gate_proj.weight`, up: `mlp.experts.${e}.up_proj.weight`, down: `mlp.experts.${e}.down_proj.weight` }),
  expertFfn: 32,
  qkNorms: true,
};
const QWEN3_CONFIG = { architectures: ["Qwen3MoeForCausalLM"], model_type: "qwen3_moe", head_dim: 32, intermediate_size: 128, num_experts: EXPERTS, moe_intermediate_size: 32, norm_topk_prob: true, decoder_sparse_step: 1, mlp_only_layers: [] };

describe("Qwen3-MoE (Qwen3MoeForCausalLM) → GGUF", () => {
  it("writes the qwen3moe keys and the experts stacked in order", async () => {
    const dir = moeFolder("qwen3moe-meta", QWEN3_CONFIG, QWEN3_LAYOUT);
    const g = join(tmp.path, "qwen3moe-meta.gguf");
    const r = await convertHfFolder(dir, g);
    assert.equal(r.architecture, "qwen3moe");
    const f = readGguf(g);
    assert.equal(metaString(f, "general.architecture"), "qwen3moe");
    assert.equal(f.metadata.get("qwen3moe.expert_count"), EXPERTS);
    assert.equal(f.metadata.get("qwen3moe.expert_used_count"), 2);
    assert.equal(f.metadata.get("qwen3moe.expert_feed_forward_length"), 32);
    assert.equal(f.metadata.get("qwen3moe.attention.key_length"), 32);
    const dims = new Map(f.tensors.map((t) => [t.name, t.dims]));
    assert.deepEqual(dims.get("blk.1.ffn_gate_exps.weight"), [64, 32, EXPERTS]);
    assert.deepEqual(dims.get("blk.1.ffn_down_exps.weight"), [32, 64, EXPERTS]);
    assert.deepEqual(dims.get("blk.1.ffn_gate_inp.weight"), [64, EXPERTS]);
    assert.ok(!dims.has("blk.0.ffn_gate.weight"));
    const source = moeTensors(QWEN3_LAYOUT, 32).find((t) => t.name === "model.layers.1.mlp.experts.5.down_proj.weight")!;
    assert.deepEqual(expertSlice(g, "blk.1.ffn_down_exps.weight", 5), asF32(source));
  });

  it("llama.cpp runs the converted model like the float64 reference", async () => {
    const dir = moeFolder("qwen3moe", QWEN3_CONFIG, QWEN3_LAYOUT);
    assertRoutingMatters(dir, {
      "routing to the wrong experts": { options: { misroute: true } },
      "not renormalising the top-k weights": { config: { norm_topk_prob: false } },
    });
    const g = join(tmp.path, "qwen3moe.gguf");
    await convertHfFolder(dir, g);
    await assertGgufMatchesReference(g, new MoeReference(dir));
  });
});

const MIXTRAL_LAYOUT: Layout = {
  router: "block_sparse_moe.gate.weight",
  expert: (e) => ({ gate: `block_sparse_moe.experts.${e}.w1.weight`, up: `block_sparse_moe.experts.${e}.w3.weight`, down: `block_sparse_moe.experts.${e}.w2.weight` }),
  expertFfn: 32,
  qkNorms: false,
};
const MIXTRAL_CONFIG = { architectures: ["MixtralForCausalLM"], model_type: "mixtral", head_dim: 16, intermediate_size: 32, num_local_experts: EXPERTS, sliding_window: null };

describe("Mixtral (MixtralForCausalLM) → GGUF", () => {
  it("writes llama keys with experts, and llama.cpp runs it like the float64 reference", async () => {
    const dir = moeFolder("mixtral", MIXTRAL_CONFIG, MIXTRAL_LAYOUT);
    assertRoutingMatters(dir, { "routing to the wrong experts": { options: { misroute: true } } });
    const g = join(tmp.path, "mixtral.gguf");
    const r = await convertHfFolder(dir, g);
    assert.equal(r.architecture, "llama");
    const f = readGguf(g);
    assert.equal(f.metadata.get("llama.expert_count"), EXPERTS);
    assert.equal(f.metadata.get("llama.expert_used_count"), 2);
    assert.equal(f.metadata.get("llama.feed_forward_length"), 32);
    assert.deepEqual(f.tensors.find((t) => t.name === "blk.0.ffn_up_exps.weight")?.dims, [64, 32, EXPERTS]);
    // q/k rows are permuted to llama.cpp's interleaved RoPE; the reference uses HF's rotate_half.
    await assertGgufMatchesReference(g, new MoeReference(dir));
  });
});

const QWEN2_LAYOUT: Layout = {
  ...QWEN3_LAYOUT,
  qkNorms: false,
  extra: (hd) => [
    ["self_attn.q_proj.bias", [DIMS.num_attention_heads * hd], 0.3],
    ["self_attn.k_proj.bias", [DIMS.num_key_value_heads * hd], 0.3],
    ["self_attn.v_proj.bias", [DIMS.num_key_value_heads * hd], 0.3],
    ["mlp.shared_expert.gate_proj.weight", [48, DIMS.hidden_size], 0.6],
    ["mlp.shared_expert.up_proj.weight", [48, DIMS.hidden_size], 0.6],
    ["mlp.shared_expert.down_proj.weight", [DIMS.hidden_size, 48], 0.6],
    ["mlp.shared_expert_gate.weight", [1, DIMS.hidden_size], 0.6],
  ],
};
const QWEN2_CONFIG = { architectures: ["Qwen2MoeForCausalLM"], model_type: "qwen2_moe", head_dim: 16, intermediate_size: 128, num_experts: EXPERTS, moe_intermediate_size: 32, shared_expert_intermediate_size: 48, norm_topk_prob: false, decoder_sparse_step: 1, mlp_only_layers: [] };

describe("Qwen2-MoE (Qwen2MoeForCausalLM) → GGUF", () => {
  it("writes the qwen2moe keys and shared expert, and llama.cpp runs it like the float64 reference", async () => {
    const dir = moeFolder("qwen2moe", QWEN2_CONFIG, QWEN2_LAYOUT);
    assertRoutingMatters(dir, {
      "routing to the wrong experts": { options: { misroute: true } },
      "renormalising the top-k weights": { config: { norm_topk_prob: true } },
    });
    const g = join(tmp.path, "qwen2moe.gguf");
    assert.equal((await convertHfFolder(dir, g)).architecture, "qwen2moe");
    const f = readGguf(g);
    assert.equal(f.metadata.get("qwen2moe.expert_count"), EXPERTS);
    assert.equal(f.metadata.get("qwen2moe.expert_feed_forward_length"), 32);
    assert.equal(f.metadata.get("qwen2moe.expert_shared_feed_forward_length"), 48);
    const dims = new Map(f.tensors.map((t) => [t.name, t.dims]));
    assert.deepEqual(dims.get("blk.1.ffn_gate_inp_shexp.weight"), [64]);
    assert.deepEqual(dims.get("blk.1.ffn_down_shexp.weight"), [48, 64]);
    await assertGgufMatchesReference(g, new MoeReference(dir));
  });
});

describe("MoE variants llama.cpp cannot run as configured are refused by name", () => {
  const refuses = async (label: string, config: Record<string, unknown>, layout: Layout, pattern: RegExp, edit?: (t: SafetensorsWriteTensor[]) => SafetensorsWriteTensor[]): Promise<void> => {
    const dir = moeFolder(label, config, layout, edit);
    await assert.rejects(convertHfFolder(dir, join(tmp.path, `${label}.gguf`)), (e: Error) => {
      assert.match(e.message, pattern);
      return true;
    });
  };

  it("MoE architectures without a converter", async () => {
    for (const arch of ["DeepseekV2ForCausalLM", "OlmoeForCausalLM", "PhimoeForCausalLM", "GraniteMoeForCausalLM", "Qwen3NextForCausalLM"]) {
      await refuses(`refuse-${arch}`, { ...QWEN3_CONFIG, architectures: [arch] }, QWEN3_LAYOUT, new RegExp(`architecture "${arch}" is not supported; supported: .*Qwen3MoeForCausalLM, Qwen2MoeForCausalLM, MixtralForCausalLM`));
    }
  });

  it("settings outside llama.cpp's qwen3moe, qwen2moe and llama (Mixtral) graphs", async () => {
    await refuses("refuse-q3-norm", { ...QWEN3_CONFIG, norm_topk_prob: false }, QWEN3_LAYOUT, /Qwen3MoeForCausalLM with norm_topk_prob false is not supported/);
    await refuses("refuse-q3-dense", { ...QWEN3_CONFIG, mlp_only_layers: [1] }, QWEN3_LAYOUT, /Qwen3MoeForCausalLM with dense layers .* is not supported/);
    await refuses("refuse-q3-step", { ...QWEN3_CONFIG, decoder_sparse_step: 2 }, QWEN3_LAYOUT, /Qwen3MoeForCausalLM with dense layers \(decoder_sparse_step 2/);
    await refuses("refuse-q3-swa", { ...QWEN3_CONFIG, use_sliding_window: true }, QWEN3_LAYOUT, /use_sliding_window is not supported/);
    await refuses("refuse-q3-act", { ...QWEN3_CONFIG, hidden_act: "gelu" }, QWEN3_LAYOUT, /hidden_act "gelu" is not supported for Qwen3MoeForCausalLM/);
    await refuses("refuse-q3-topk", { ...QWEN3_CONFIG, num_experts_per_tok: EXPERTS + 1 }, QWEN3_LAYOUT, /"num_experts_per_tok" 9 exceeds "num_experts" 8/);
    await refuses("refuse-q2-norm", { ...QWEN2_CONFIG, norm_topk_prob: true }, QWEN2_LAYOUT, /Qwen2MoeForCausalLM with norm_topk_prob true is not supported \(llama.cpp's graph never/);
    await refuses("refuse-q2-tied", { ...QWEN2_CONFIG, tie_word_embeddings: true }, QWEN2_LAYOUT, /Qwen2MoeForCausalLM with tie_word_embeddings is not supported/, (t) => t.filter((x) => x.name !== "lm_head.weight"));
    await refuses("refuse-mixtral-swa", { ...MIXTRAL_CONFIG, sliding_window: 4 }, MIXTRAL_LAYOUT, /MixtralForCausalLM with sliding_window 4 is not supported/);
    const dropExpert = (t: SafetensorsWriteTensor[]) => t.filter((x) => x.name !== "model.layers.1.block_sparse_moe.experts.7.w3.weight");
    await refuses("refuse-mixtral-missing", MIXTRAL_CONFIG, MIXTRAL_LAYOUT, /tensor "model.layers.1.block_sparse_moe.experts.7.w3.weight" is missing/, dropExpert);
  });
});
