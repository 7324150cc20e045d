import { type GgufFile, metaNumber, metaString } from "./gguf.js";

/** llama.cpp's default KV cache type is F16: 2 bytes an element. */
const KV_ELEMENT_BYTES = 2;

/**
 * Bytes of KV cache one token of context takes across all layers, from a GGUF's metadata:
 * per layer, KV heads × (key length + value length) × 2 bytes. Undefined when the metadata lacks
 * the shape (not a transformer llama.cpp caches this way).
 */
export function kvBytesPerToken(file: GgufFile): number | undefined {
  const arch = metaString(file, "general.architecture");
  if (!arch) return undefined;
  const layers = metaNumber(file, `${arch}.block_count`);
  const heads = metaNumber(file, `${arch}.attention.head_count`);
  const embedding = metaNumber(file, `${arch}.embedding_length`);
  if (!layers || !heads || !embedding) return undefined;
  const keyLength = metaNumber(file, `${arch}.attention.key_length`) ?? embedding / heads;
  const valueLength = metaNumber(file, `${arch}.attention.value_length`) ?? embedding / heads;
  // Some architectures give KV heads per layer (an array); most one count for all.
  const kv = file.metadata.get(`${arch}.attention.head_count_kv`);
  const perLayer = Array.isArray(kv) ? kv.map(Number) : Array.from({ length: layers }, () => metaNumber(file, `${arch}.attention.head_count_kv`) ?? heads);
  return perLayer.reduce((n, kvHeads) => n + kvHeads * (keyLength + valueLength) * KV_ELEMENT_BYTES, 0);
}
