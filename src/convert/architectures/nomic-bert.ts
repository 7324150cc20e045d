import { ConvertError } from "../errors.js";
import { encoderConverter, vector, withBias } from "./bert.js";
import { f32 } from "./decoder.js";

/** The settings llama.cpp's nomic-bert graph hard-codes, as config.json must state them (absent: HF's default). */
const FIXED: [key: string, value: unknown, fallback: unknown][] = [
  ["activation_function", "swiglu", "gelu_new"],
  ["prenorm", false, false],
  ["causal", false, false],
  ["qkv_proj_bias", false, true],
  ["mlp_fc1_bias", false, true],
  ["mlp_fc2_bias", false, true],
  ["rotary_emb_fraction", 1, 0],
  ["rotary_emb_interleaved", false, false],
  ["rotary_emb_scale_base", null, null],
  ["rotary_scaling_factor", null, null],
  ["use_rms_norm", false, false],
  ["parallel_block", false, false],
];

/**
 * Nomic's BERT (`NomicBertModel`: nomic-embed-text v1 / v1.5): no position embeddings but NeoX
 * RoPE on a fused, bias-free qkv projection, SwiGLU MLP (`fc11` up, `fc12` gate), post-LN.
 * The MoE variant (nomic-embed-text v2) is refused.
 */
export const nomicBertConverter = encoderConverter({
  hfArchitecture: "NomicBertModel",
  ggufArchitecture: "nomic-bert",
  check(c, d, configPath) {
    if (c.raw.moe_every_n_layers) throw new ConvertError(configPath, "NomicBertModel with mixture-of-experts layers (moe_every_n_layers) is not supported");
    for (const [key, value, fallback] of FIXED) {
      const got = c.raw[key] === undefined ? fallback : c.raw[key];
      if (got !== value) throw new ConvertError(configPath, `config.json's "${key}" is ${JSON.stringify(got)}; llama.cpp's nomic-bert graph supports ${JSON.stringify(value)} only`);
    }
    const base = c.raw.rotary_emb_base ?? 10000;
    if (typeof base !== "number" || !(base > 0)) throw new ConvertError(configPath, `config.json's "rotary_emb_base" must be a positive number, got ${JSON.stringify(base)}`);
    // n_positions (8192 for v1 / v1.5) is what the rotary embedding allows; they were trained on 2048.
    const trained = c.raw.max_trained_positions;
    const context = typeof trained === "number" && trained > 0 ? Math.min(trained, d.context) : d.context;
    return { context, metadata: [["nomic-bert.rope.freq_base", f32(base)]] };
  },
  embeddings: (_d, types) => [
    { hf: "embeddings.word_embeddings.weight", gguf: "token_embd.weight", shape: (d) => [d.vocab, d.hidden] },
    { hf: "embeddings.token_type_embeddings.weight", gguf: "token_types.weight", shape: (d) => [types, d.hidden] },
    ...withBias("emb_ln", "token_embd_norm", vector),
  ],
  layerPrefix: (i) => `encoder.layers.${i}`,
  layer: [
    // q, k and v stacked in that order, as llama.cpp splits attn_qkv.
    { hf: "attn.Wqkv.weight", gguf: "attn_qkv.weight", shape: (d) => [3 * d.hidden, d.hidden] },
    { hf: "attn.out_proj.weight", gguf: "attn_output.weight", shape: (d) => [d.hidden, d.hidden] },
    ...withBias("norm1", "attn_output_norm", vector),
    { hf: "mlp.fc11.weight", gguf: "ffn_up.weight", shape: (d) => [d.ffn, d.hidden] },
    { hf: "mlp.fc12.weight", gguf: "ffn_gate.weight", shape: (d) => [d.ffn, d.hidden] },
    { hf: "mlp.fc2.weight", gguf: "ffn_down.weight", shape: (d) => [d.hidden, d.ffn] },
    ...withBias("norm2", "layer_output_norm", vector),
  ],
  ignored: [],
});
