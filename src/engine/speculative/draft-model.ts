import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import { DraftVocabularyMismatchError } from "../errors.js";

/** What a draft model is loaded with: one sequence per target slot, each as long as the target's. */
export interface DraftModelOptions {
  /** How the draft model is named in errors (its discovered name or path). */
  name: string;
  ggufPath: string;
  /** Tokens per sequence: the target's slot size. */
  contextSize: number;
  sequences: number;
  threads: number;
  batchSize?: number;
  flashAttention: boolean;
}

/** What a draft model must share with its target: token texts by id, BOS and EOS ids. */
export interface Vocabulary {
  tokens: readonly unknown[];
  bos?: number | null;
  eos?: number | null;
}

/** A loaded model's vocabulary: its GGUF's token texts (empty when the file lists none), its BOS and EOS. */
function vocabularyOf(model: LlamaModel): Vocabulary {
  const tokens = (model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: unknown } } }).tokenizer?.ggml?.tokens;
  return { tokens: Array.isArray(tokens) ? tokens : [], bos: model.tokens.bos, eos: model.tokens.eos };
}

/** The first way `draft`'s vocabulary differs from `target`'s, or undefined when they are the same. */
export function vocabularyDifference(target: Vocabulary, draft: Vocabulary): string | undefined {
  const [a, b] = [target.tokens, draft.tokens];
  if (a.length === 0 || b.length === 0) return "a GGUF lists no token texts";
  if (a.length !== b.length) return `${b.length} tokens against the target's ${a.length}`;
  for (let id = 0; id < a.length; id++) {
    if (a[id] !== b[id]) return `token ${id} is ${JSON.stringify(b[id])} against the target's ${JSON.stringify(a[id])}`;
  }
  for (const special of ["bos", "eos"] as const) {
    if (target[special] !== draft[special]) return `${special.toUpperCase()} is ${draft[special]} against the target's ${target[special]}`;
  }
  return undefined;
}

/**
 * A smaller model with the target's vocabulary, loaded beside it, drafting tokens greedily for the
 * target to check (speculative decoding). Its context has one sequence per target slot, so each
 * slot's draft sequence keeps the KV cache of what the target's slot holds between steps.
 */
export class DraftModel {
  private constructor(
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly sequences: LlamaContextSequence[],
  ) {}

  /** Loads the draft model; a vocabulary other than `target`'s is a DraftVocabularyMismatchError. */
  static async load(llama: Llama, target: LlamaModel, targetName: string, options: DraftModelOptions): Promise<DraftModel> {
    const model = await llama.loadModel({ modelPath: options.ggufPath });
    try {
      const difference = vocabularyDifference(vocabularyOf(target), vocabularyOf(model));
      if (difference !== undefined) throw new DraftVocabularyMismatchError(options.name, targetName, difference);
      const context = await model.createContext({
        contextSize: options.contextSize,
        sequences: options.sequences,
        threads: options.threads,
        batchSize: options.batchSize,
        flashAttention: options.flashAttention && model.flashAttentionSupported,
        failedCreationRemedy: false,
      });
      const sequences = Array.from({ length: options.sequences }, () => context.getSequence());
      return new DraftModel(model, context, sequences);
    } catch (e) {
      await model.dispose();
      throw e;
    }
  }

  /** Bytes it holds: weights plus its context. */
  get memoryBytes(): number {
    return this.model.size + this.context.stateSize;
  }

  /**
   * Up to `max` tokens the draft model expects after `history` + `last` (what target slot
   * `slot` holds, and its pending token), greedily. The slot's draft sequence first drops what it
   * holds past the common prefix (tokens the target rejected, or another request's) and evaluates
   * what it lacks; the last drafted token is not evaluated (the next call does, if accepted).
   */
  async draft(slot: number, history: readonly Token[], last: Token, max: number): Promise<Token[]> {
    const sequence = this.sequences[slot]!;
    const wanted = [...history, last];
    await sequence.adaptStateToTokens(wanted, false);
    // At least one token is evaluated: its logits give the first draft token.
    const from = Math.min(sequence.nextTokenIndex, wanted.length - 1);
    if (from < sequence.nextTokenIndex) await sequence.eraseContextTokenRanges([{ start: from, end: sequence.nextTokenIndex }]);
    const draft: Token[] = [];
    for await (const token of sequence.evaluate(wanted.slice(from), { temperature: 0 })) {
      draft.push(token);
      if (draft.length >= max) break;
    }
    return draft;
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}
