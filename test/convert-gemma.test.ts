import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { convertHfFolder } from "../src/convert/convert.js";
import { metaString, readGguf } from "../src/formats/gguf.js";
import { readSafetensors, readSafetensorsData } from "../src/formats/safetensors.js";
import type { SafetensorsWriteTensor } from "../src/formats/safetensors-writer.js";
import { type GemmaConfig, GemmaReference } from "./helpers/gemma-reference.js";
import { copyHfFolder, randomTensor } from "./helpers/hf-fixtures.js";
import { loadGguf } from "./helpers/llama-run.js";
import { assertMatchesReference, logProbGap, REFERENCE_PROMPTS } from "./helpers/reference-check.js";
import { STORIES_HF, tempDir } from "./helpers/paths.js";
import { golden as storiesGolden } from "./helpers/server.js";

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

const PROMPTS = REFERENCE_PROMPTS;
const GENERATED = 12;
/**
 * Next-token log-probabilities of the top 5 may differ by this much (0.5% in probability):
 * llama.cpp keeps K/V in F16 and tabulates GELU over F16 inputs.
 */
const LOGPROB_TOLERANCE = 5e-3;
const TOP = 5;

function gemmaTensors(dims: typeof DIMS & Record<string, unknown>, qkNorms: boolean): SafetensorsWriteTensor[] {
  const { hidden_size: d, intermediate_size: ff, num_attention_heads: heads, num_key_value_heads: kv, head_dim: hd, vocab_size: vocab } = dims;
  const layers = dims.num_hidden_layers as number;
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

function gemmaFolder(label: string, config: Record<string, unknown>, qkNorms: boolean, extra: SafetensorsWriteTensor[] = []): string {
  const full: Record<string, unknown> & typeof DIMS = { ...DIMS, ...config };
  return copyHfFolder(STORIES_HF, join(tmp.path, label), { config: full, tensors: () => [...gemmaTensors(full, qkNorms), ...extra] });
}


/** Each override, applied to the reference alone, must move the top log-probabilities far beyond the tolerance. */
function assertFeaturesMatter(dir: string, features: Record<string, Partial<GemmaConfig>>): void {
  const base = new GemmaReference(dir);
  for (const [feature, overrides] of Object.entries(features)) {
    const without = new GemmaReference(dir, overrides);
    const moved = Math.max(...PROMPTS.map((p) => logProbGap(base.nextTokenProbabilities(p), without.nextTokenProbabilities(p), TOP)));
    assert.ok(moved > 10 * LOGPROB_TOLERANCE, `${feature} changes the next-token log-probabilities (by ${moved.toFixed(4)})`);
  }
}

const CHECK = { prompts: PROMPTS, generated: GENERATED, top: TOP, tolerance: LOGPROB_TOLERANCE };

/** Converts `dir` and checks llama.cpp's run of it against `reference` (CHECK). */
async function assertConvertedMatches(dir: string, name: string, reference: GemmaReference): Promise<void> {
  const g = join(tmp.path, `${name}.gguf`);
  await convertHfFolder(dir, g);
  const model = await loadGguf(g);
  try {
    await assertMatchesReference(model, reference, CHECK);
  } finally {
    await model.dispose();
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
    await assertConvertedMatches(dir, "gemma2", new GemmaReference(dir));
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
    await assertConvertedMatches(dir, "gemma3", new GemmaReference(dir));
  });
});

describe("Gemma 3 multimodal (Gemma3ForConditionalGeneration) → GGUF: the text model", () => {
  // A text_config like gemma-3-4b-it's (less its rope scaling, so that the global RoPE base
  // binds at these short positions): sizes and window given; heads (8 / 4 KV),
  // head_dim 256, RoPE bases (10⁶ global, 10⁴ local), query_pre_attn_scalar 256 and the
  // 5-of-6 sliding pattern left to transformers' Gemma3TextConfig defaults.
  const given = { hidden_size: 64, intermediate_size: 128, num_hidden_layers: 6, vocab_size: 512, sliding_window: 4 };
  const defaults = { num_attention_heads: 8, num_key_value_heads: 4, head_dim: 256, rope_theta: 1_000_000, rope_local_base_freq: 10_000, query_pre_attn_scalar: 256, sliding_window_pattern: 6, max_position_embeddings: 131_072 };
  /** The same model as a Gemma3ForCausalLM folder with every value written out: what the reference reads. */
  const textOnly = gemmaFolder("gemma3-text-only", { architectures: ["Gemma3ForCausalLM"], model_type: "gemma3_text", ...given, ...defaults, final_logit_softcapping: null, attn_logit_softcapping: null }, true);
  const textTensors = readSafetensors(join(textOnly, "model.safetensors")).tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: readSafetensorsData(t) }));
  const image: SafetensorsWriteTensor[] = [
    randomTensor("vision_tower.vision_model.embeddings.patch_embedding.weight", [16, 3, 2, 2], 31),
    randomTensor("vision_tower.vision_model.post_layernorm.weight", [16], 32),
    randomTensor("multi_modal_projector.mm_input_projection_weight", [16, 64], 33),
    randomTensor("multi_modal_projector.mm_soft_emb_norm.weight", [16], 34),
  ];

  /** A multimodal folder: `rename` maps the text model's HF names, `imagePrefix` goes before the image tensors' names. */
  function multimodalFolder(label: string, rename: (name: string) => string, imagePrefix: string): string {
    const dir = copyHfFolder(STORIES_HF, join(tmp.path, label), { tensors: () => [...textTensors.map((t) => ({ ...t, name: rename(t.name) })), ...image.map((t) => ({ ...t, name: imagePrefix + t.name }))] });
    writeFileSync(join(dir, "config.json"), JSON.stringify({
      _name_or_path: "gemma-3-tiny-it", architectures: ["Gemma3ForConditionalGeneration"], model_type: "gemma3", torch_dtype: "float32",
      boi_token_index: 255999, eoi_token_index: 256000, image_token_index: 262144, mm_tokens_per_image: 256, eos_token_id: [1, 106],
      text_config: { model_type: "gemma3_text", ...given },
      vision_config: { model_type: "siglip_vision_model", hidden_size: 16, image_size: 4, patch_size: 2, num_hidden_layers: 0 },
    }));
    return dir;
  }
  // transformers 4.50 wrote language_model.model.*; later versions model.language_model.* (and model.vision_tower.*).
  const legacy = multimodalFolder("gemma3-mm-legacy", (n) => `language_model.${n}`, "");
  const current = multimodalFolder("gemma3-mm-current", (n) => n.replace(/^model\./, "model.language_model."), "model.");

  it("reads text_config with Gemma 3's defaults and names the skipped vision tower and projector", async () => {
    const g = join(tmp.path, "gemma3-mm-legacy.gguf");
    const r = await convertHfFolder(legacy, g);
    assert.equal(r.architecture, "gemma3");
    assert.deepEqual(r.skipped, ["vision tower (2 tensors) not converted: text only", "multimodal projector (2 tensors) not converted: text only"]);
    const f = readGguf(g);
    assert.equal(f.metadata.get("gemma3.attention.head_count"), 8);
    assert.equal(f.metadata.get("gemma3.attention.head_count_kv"), 4);
    assert.equal(f.metadata.get("gemma3.attention.key_length"), 256);
    assert.equal(f.metadata.get("gemma3.rope.freq_base"), 1_000_000);
    assert.equal(f.metadata.get("gemma3.rope.freq_base_swa"), 10_000);
    assert.equal(f.metadata.get("gemma3.attention.sliding_window_pattern"), 6);
    assert.equal(f.metadata.get("gemma3.context_length"), 131_072);
    assert.equal(f.tensors.length, 2 + 6 * 13, "embeddings, final norm and 13 tensors per layer; no image tensors, no output.weight (tied)");
    // The later naming converts to the very same file.
    const g2 = join(tmp.path, "gemma3-mm-current.gguf");
    assert.deepEqual((await convertHfFolder(current, g2)).skipped, r.skipped);
    assert.ok(readFileSync(g).equals(readFileSync(g2)), "both checkpoint layouts give identical GGUFs");
  });

  it("llama.cpp runs the converted text model like the float64 reference", async () => {
    // The defaults bind: others in their place move the answer.
    assertFeaturesMatter(textOnly, {
      "the global RoPE base": { rope_theta: 10_000 },
      "the local RoPE base": { rope_local_base_freq: 1_000_000 },
      "query_pre_attn_scalar": { query_pre_attn_scalar: 64 },
    });
    await assertConvertedMatches(legacy, "gemma3-mm", new GemmaReference(textOnly));
  });

  it("an image tensor under an unknown name is still refused", async () => {
    const dir = multimodalFolder("gemma3-mm-odd", (n) => `language_model.${n}`, "vision.");
    await assert.rejects(convertHfFolder(dir, join(tmp.path, "gemma3-mm-odd.gguf")), /unexpected tensor "vision\.vision_tower\.vision_model\.embeddings\.patch_embedding\.weight": the Gemma3ForConditionalGeneration converter/);
  });
});

const GEMMA2_SMALL = { architectures: ["Gemma2ForCausalLM"], model_type: "gemma2", num_hidden_layers: 2, sliding_window: 4, query_pre_attn_scalar: 32 };

/** Gemma's chat template (Gemma 2 / 3 instruction-tuned models). */
const GEMMA_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}" +
  "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}";

describe("Gemma's SentencePiece tokenizer from tokenizer.json", () => {
  it("keeps BOS, byte fallback, no space prefix, the turn tokens and the chat template", async () => {
    // Gemma's tokenizer.json replaces spaces with ▁ but, unlike Llama 2's, prepends none; its turn
    // markers are special added tokens. Built here from the stories260K vocabulary.
    const dir = gemmaFolder("gemma-tokenizer", { ...GEMMA2_SMALL, vocab_size: 514 }, false);
    const tokenizerPath = join(dir, "tokenizer.json");
    const tokenizer = JSON.parse(readFileSync(tokenizerPath, "utf8"));
    tokenizer.normalizer = { type: "Replace", pattern: { String: " " }, content: "\u2581" };
    tokenizer.added_tokens.push(
      { id: 512, content: "<start_of_turn>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 513, content: "<end_of_turn>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    );
    writeFileSync(tokenizerPath, JSON.stringify(tokenizer));
    const configPath = join(dir, "tokenizer_config.json");
    writeFileSync(configPath, JSON.stringify({ ...JSON.parse(readFileSync(configPath, "utf8")), chat_template: GEMMA_TEMPLATE }));

    const g = join(tmp.path, "gemma-tokenizer.gguf");
    await convertHfFolder(dir, g);
    const f = readGguf(g);
    assert.equal(metaString(f, "tokenizer.ggml.model"), "llama");
    assert.equal(f.metadata.get("tokenizer.ggml.add_bos_token"), true);
    assert.equal(f.metadata.get("tokenizer.ggml.add_space_prefix"), false);
    assert.equal(metaString(f, "tokenizer.chat_template"), GEMMA_TEMPLATE);
    const model = await loadGguf(g);
    try {
      assert.equal(model.tokens.bos, 1);
      assert.equal(model.tokens.eot, 513, "<end_of_turn> ends a turn");
      // Without a prepended ▁, " text" tokenizes as Llama 2's tokenizer does "text" (golden ids).
      for (const c of storiesGolden.tokenization.filter((t) => t.text !== "")) assert.deepEqual(model.tokenize(` ${c.text}`), c.ids, JSON.stringify(c.text));
      assert.deepEqual(model.tokenize("<start_of_turn>user", true).slice(0, 1), [512]);
      // Byte fallback: a character outside the vocabulary becomes its UTF-8 bytes (<0xE2> is id 229).
      assert.deepEqual(model.tokenize("\u2603").slice(0, 3), [229, 155, 134]);
    } finally {
      await model.dispose();
    }
  });
});

describe("Gemma variants and settings llama.cpp cannot run are refused by name", () => {
  const refuses = async (label: string, config: Record<string, unknown>, pattern: RegExp, qkNorms = false, extra: SafetensorsWriteTensor[] = []): Promise<void> => {
    const dir = gemmaFolder(label, config, qkNorms, extra);
    await assert.rejects(convertHfFolder(dir, join(tmp.path, `${label}.gguf`)), (e: Error) => {
      assert.match(e.message, pattern);
      return true;
    });
  };

  it("other Gemma architectures (Gemma 1, Gemma 3n)", async () => {
    for (const arch of ["GemmaForCausalLM", "Gemma3nForConditionalGeneration"]) {
      await refuses(`refuse-${arch}`, { ...GEMMA2_SMALL, architectures: [arch] }, new RegExp(`architecture "${arch}" is not supported; supported: .*Gemma2ForCausalLM, Gemma3ForCausalLM`));
    }
  });

  it("settings outside llama.cpp's gemma2 / gemma3 graphs", async () => {
    const gemma3 = { ...GEMMA2_SMALL, architectures: ["Gemma3ForCausalLM"] };
    await refuses("refuse-g3-softcap", { ...gemma3, attn_logit_softcapping: 50 }, /Gemma 3 with attn_logit_softcapping is not supported/, true);
    await refuses("refuse-g3-yarn", { ...gemma3, rope_scaling: { rope_type: "yarn", factor: 4 } }, /Gemma 3 global-layer rope type "yarn" is not supported/, true);
    await refuses("refuse-g2-nocap", { ...GEMMA2_SMALL, final_logit_softcapping: null }, /"final_logit_softcapping": null is not supported/);
    await refuses("refuse-g2-act", { ...GEMMA2_SMALL, hidden_activation: "gelu" }, /hidden_activation "gelu" is not supported/);
    await refuses("refuse-g2-layers", { ...GEMMA2_SMALL, num_hidden_layers: 3, layer_types: ["full_attention", "sliding_attention", "sliding_attention"] }, /"layer_types" is not a repeating pattern/);
    const lmHead = randomTensor("lm_head.weight", [DIMS.vocab_size, DIMS.hidden_size], 99);
    await refuses("refuse-g2-untied", { ...GEMMA2_SMALL, tie_word_embeddings: false }, /an untied lm_head is not supported for Gemma 2/, false, [lmHead]);
  });
});
