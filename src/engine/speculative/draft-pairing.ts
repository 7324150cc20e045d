import type { ModelSpec } from "../../discovery/types.js";
import { metaNumber, readGguf } from "../../formats/gguf.js";
import { type Vocabulary, vocabularyDifference } from "./draft-model.js";

/** A candidate GGUF's vocabulary from its metadata; none when it lists no tokens or cannot be read. */
function vocabularyOf(ggufPath: string): Vocabulary | undefined {
  try {
    const file = readGguf(ggufPath);
    const tokens = file.metadata.get("tokenizer.ggml.tokens");
    if (!Array.isArray(tokens) || tokens.length === 0) return undefined;
    return { tokens, bos: metaNumber(file, "tokenizer.ggml.bos_token_id"), eos: metaNumber(file, "tokenizer.ggml.eos_token_id") };
  } catch {
    // An unreadable candidate is simply not a pair.
    return undefined;
  }
}

/** Its size for the comparison: parameters when both models declare them, else file bytes. */
const sizeOf = (spec: ModelSpec, other: ModelSpec): number => (spec.parameters !== undefined && other.parameters !== undefined ? spec.parameters : spec.sizeBytes);

/**
 * The draft model `--draft-auto` pairs with `target` (loaded from `targetGguf`), among the
 * discovered `candidates`: single-file GGUF models, without an adapter or projector, other than
 * the target, of the target's architecture (`general.architecture`), at most half its size
 * (parameters when both declare them, else file bytes: a draft near the target's size cannot
 * pay), and with the identical vocabulary (token texts by id, BOS and EOS ids). The smallest wins
 * (the cheapest drafts); ties go to the first name. None: undefined.
 */
export function pairDraftModel(target: ModelSpec, targetGguf: string, candidates: readonly ModelSpec[]): ModelSpec | undefined {
  if (target.architecture === undefined) return undefined;
  const fitting = candidates
    .filter((c) => c.name !== target.name && c.format === "gguf" && c.files.length === 1 && !c.lora && !c.projector && !c.error)
    .filter((c) => c.architecture === target.architecture && 2 * sizeOf(c, target) <= sizeOf(target, c))
    .sort((a, b) => sizeOf(a, target) - sizeOf(b, target) || a.name.localeCompare(b.name));
  if (fitting.length === 0) return undefined;
  const vocabulary = vocabularyOf(targetGguf);
  if (vocabulary === undefined) return undefined;
  return fitting.find((c) => {
    const other = vocabularyOf(c.files[0]!);
    return other !== undefined && vocabularyDifference(vocabulary, other) === undefined;
  });
}
