import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { convertHfFolder } from "../src/convert/convert.js";
import { readGguf } from "../src/formats/gguf.js";
import type { SafetensorsWriteTensor } from "../src/formats/safetensors-writer.js";
import { asF32, copyHfFolder, f32Data, randomTensor } from "./helpers/hf-fixtures.js";
import { F32_CONTEXT, loadGguf } from "./helpers/llama-run.js";
import { type FactorChoice, Phi3Reference } from "./helpers/phi3-reference.js";
import { assertMatchesReference, logProbGap, REFERENCE_PROMPTS } from "./helpers/reference-check.js";
import { STORIES_HF, tempDir } from "./helpers/paths.js";

const tmp = tempDir();
after(() => tmp.cleanup());

/**
 * A tiny random Phi-4-mini-shaped model on the stories260K tokenizer (vocab 512, BOS 1): fused
 * qkv / gate_up, GQA 4:2, head_dim 32 of which 24 rotate (partial_rotary_factor 0.75, so 12
 * LongRoPE factors), 4096 positions over an original 512 (attention factor √(1 + ln 8 / ln 512)).
 */
const ORIGINAL = 512;
const HALF_ROT = 12;
const SHORT = Array.from({ length: HALF_ROT }, (_, i) => 1 + 0.25 * i);
const LONG = Array.from({ length: HALF_ROT }, (_, i) => 3 + 2.5 * i);
const CONFIG = {
  architectures: ["Phi3ForCausalLM"], model_type: "phi3", hidden_size: 128, intermediate_size: 128, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32, vocab_size: 512, max_position_embeddings: 4096, original_max_position_embeddings: ORIGINAL,
  partial_rotary_factor: 0.75, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: false, torch_dtype: "float32", sliding_window: 262144,
  rope_scaling: { type: "longrope", short_factor: SHORT, long_factor: LONG },
};

const PROMPTS = REFERENCE_PROMPTS;
/** F32 K/V, no flash attention: only float32 rounding separates llama.cpp from the reference. */
const LOGPROB_TOLERANCE = 1e-3;
const TOP = 5;

function phi3Tensors(): SafetensorsWriteTensor[] {
  const { hidden_size: d, intermediate_size: ff, num_attention_heads: heads, num_key_value_heads: kv, vocab_size: vocab } = CONFIG;
  const hd = d / heads;
  let seed = 21;
  const t = (name: string, shape: number[], scale = 0.3) => randomTensor(name, shape, seed++, scale);
  // Norm weights of 1 ± 0.25 keep RMS-normalised activations near unit size.
  const norm = (name: string): SafetensorsWriteTensor => {
    const r = t(name, [d], 0.5);
    return { ...r, data: f32Data(asF32(r).map((v) => 1 + v)) };
  };
  const tensors = [t("model.embed_tokens.weight", [vocab, d], 0.5), t("lm_head.weight", [vocab, d], 0.5), norm("model.norm.weight")];
  for (let i = 0; i < CONFIG.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    tensors.push(
      t(`${p}.self_attn.qkv_proj.weight`, [(heads + 2 * kv) * hd, d]), t(`${p}.self_attn.o_proj.weight`, [d, heads * hd]),
      t(`${p}.mlp.gate_up_proj.weight`, [2 * ff, d]), t(`${p}.mlp.down_proj.weight`, [d, ff]),
      norm(`${p}.input_layernorm.weight`), norm(`${p}.post_attention_layernorm.weight`),
    );
  }
  return tensors;
}

// (Folder names avoid "phi3": llama.cpp keys Phi-3 vocabulary tweaks on general.name.)
const folder = (label: string, config: Record<string, unknown> = {}): string => copyHfFolder(STORIES_HF, join(tmp.path, label), { config: { ...CONFIG, ...config }, tensors: phi3Tensors });

describe("Phi-3.5 / Phi-4-mini LongRoPE (Phi3ForCausalLM, rope_scaling longrope) → GGUF", () => {
  it("writes both factor sets, the original context and the attention factor", async () => {
    const g = join(tmp.path, "longrope-meta.gguf");
    await convertHfFolder(folder("longrope-meta"), g);
    const f = readGguf(g);
    assert.equal(f.metadata.get("phi3.rope.dimension_count"), 24);
    assert.equal(f.metadata.get("phi3.rope.scaling.original_context_length"), ORIGINAL);
    assert.equal(f.metadata.get("phi3.context_length"), 4096);
    assert.equal(f.metadata.get("phi3.rope.scaling.attn_factor"), Math.fround(Math.sqrt(1 + Math.log(8) / Math.log(ORIGINAL))));
    for (const name of ["rope_factors_long.weight", "rope_factors_short.weight"]) {
      const info = f.tensors.find((x) => x.name === name);
      assert.deepEqual(info?.dims, [HALF_ROT], name);
    }
  });

  it("an explicit attention_factor is used as it is", async () => {
    const g = join(tmp.path, "longrope-attn.gguf");
    await convertHfFolder(folder("longrope-attn", { rope_scaling: { ...CONFIG.rope_scaling, attention_factor: 1.25 } }), g);
    assert.equal(readGguf(g).metadata.get("phi3.rope.scaling.attn_factor"), 1.25);
  });

  // llama.cpp takes the long factors when the context per sequence exceeds the original 512.
  for (const [contextSize, factors] of [[256, "short"], [1024, "long"]] as [number, FactorChoice][]) {
    it(`llama.cpp with a ${contextSize}-token context runs like the float64 reference with the ${factors} factors`, async () => {
      const dir = folder(`longrope-${factors}`);
      const reference = new Phi3Reference(dir, factors);
      // On the reference alone: other factors, no factors, or no attention factor move the answer.
      const alternatives: [string, Phi3Reference][] = [
        [factors === "short" ? "the long factors" : "the short factors", new Phi3Reference(dir, factors === "short" ? "long" : "short")],
        ["no factors", new Phi3Reference(dir, "none")],
        ["no attention factor", new Phi3Reference(dir, factors, false)],
      ];
      for (const [what, other] of alternatives) {
        const moved = Math.max(...PROMPTS.map((p) => logProbGap(reference.nextTokenProbabilities(p), other.nextTokenProbabilities(p), TOP)));
        assert.ok(moved > 10 * LOGPROB_TOLERANCE, `${what} changes the next-token log-probabilities (by ${moved.toFixed(4)})`);
      }
      const g = join(tmp.path, `longrope-${factors}.gguf`);
      await convertHfFolder(dir, g);
      const model = await loadGguf(g);
      try {
        await assertMatchesReference(model, reference, { prompts: PROMPTS, generated: 12, top: TOP, tolerance: LOGPROB_TOLERANCE, contextOptions: { ...F32_CONTEXT, contextSize } });
      } finally {
        await model.dispose();
      }
    });
  }

  it("refuses what it cannot convert, by name", async () => {
    const refuses = async (label: string, config: Record<string, unknown>, pattern: RegExp): Promise<void> => {
      await assert.rejects(convertHfFolder(folder(label, config), join(tmp.path, `${label}.gguf`)), (e: Error) => {
        assert.match(e.message, pattern);
        return true;
      });
    };
    await refuses("lr-yarn", { rope_scaling: { type: "yarn", factor: 4 } }, /Phi-3 rope_scaling "yarn" is not supported \(supported: longrope\)/);
    await refuses("lr-short", { rope_scaling: { ...CONFIG.rope_scaling, short_factor: SHORT.slice(1) } }, /longrope "short_factor" must list 12 positive numbers/);
    await refuses("lr-orig", { original_max_position_embeddings: undefined }, /longrope needs a positive integer "original_max_position_embeddings"/);
  });
});
