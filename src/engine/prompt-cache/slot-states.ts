import type { Token } from "node-llama-cpp";
import type { DecodeLoop } from "../decode-loop.js";
import type { NativeContext } from "../native-context.js";
import type { Slot } from "../slots.js";
import { type FileStamp, stampsCurrent } from "./key.js";
import type { PromptCacheEntry, PromptCacheStore } from "./store.js";

/** The prompt cache as a pool hands it to each model it loads. */
export interface PromptCacheSettings {
  store: PromptCacheStore;
  /** Shortest prefix worth saving or restoring, in tokens. */
  minTokens: number;
}

export interface SlotStatesOptions extends PromptCacheSettings {
  /** promptCacheKey of the model and its context. */
  key: string;
  files: FileStamp[];
  context: NativeContext;
  loop: DecodeLoop;
  /** Tokens per sequence: the most a state restored into one may hold. */
  contextSize: number;
}

/**
 * One loaded model's side of the prompt cache: restores a saved state into a request's slot when
 * it holds more of the prompt than the slot does, and saves a slot's state when its long prefix
 * would be lost (another prompt takes the slot, the model unloads). Native saves and loads run
 * through `DecodeLoop.between`, so no decode touches the context while llama.cpp reads or
 * replaces a sequence's cache.
 */
export class SlotStates {
  constructor(private readonly options: SlotStatesOptions) {}

  /**
   * Before a request evaluates `prompt` on `slot`, whose cache holds its first `cached` tokens:
   * saves the slot's state if this prompt is about to overwrite a long prefix, then restores the
   * saved state sharing the most with the prompt if that beats `cached`. Returns how many leading
   * prompt tokens the slot holds now (its `tokens` are updated; the caller erases the rest).
   */
  async prepare(slot: Slot, prompt: readonly Token[], cached: number): Promise<number> {
    const { store, minTokens, key } = this.options;
    // The last prompt token is always evaluated (its logits start the generation).
    const usable = prompt.length - 1;
    if (usable < minTokens) return cached;
    const found = cached < usable ? await store.find(key, prompt, Math.max(minTokens, cached + 1), usable) : undefined;
    // A long prefix this prompt does not keep would be gone from memory: keep it on disk.
    if (cached < minTokens && slot.tokens.length >= minTokens) await this.save(slot);
    const restored = found !== undefined && (await this.restore(slot, found.entry));
    if (restored) store.countHit();
    else if (cached < minTokens) store.countMiss();
    if (restored) return found.shared;
    return Math.min(cached, slot.tokens.length);
  }

  /** Saves every slot holding at least the minimum (the model is unloading; nothing decodes). */
  async saveAll(slots: readonly Slot[]): Promise<void> {
    // A model unloading because its file changed: its states could never be restored.
    if (!(await stampsCurrent(this.options.files))) return;
    for (const slot of slots) if (slot.tokens.length >= this.options.minTokens) await this.save(slot);
    await this.options.store.settled();
  }

  /** Writes the slot's state; a failure only means nothing is saved. */
  private async save(slot: Slot): Promise<void> {
    const { store, key, files, context, loop } = this.options;
    const tokens = slot.tokens.slice();
    const pending = await store.beginSave(key, files, tokens);
    if (!pending) return;
    try {
      const bytes = await loop.between(() => context.saveSequenceStateToFile(pending.tmpPath, slot.id, Uint32Array.from(tokens)));
      pending.commit(bytes);
    } catch {
      pending.abort();
    }
  }

  /**
   * Replaces the slot's cache with the entry's state. False when the entry is unusable (it is
   * removed and the slot left empty: a failed load may have cleared the sequence already).
   */
  private async restore(slot: Slot, entry: PromptCacheEntry): Promise<boolean> {
    const { store, context, loop, contextSize } = this.options;
    const intact = await store.intact(entry);
    const loaded =
      intact &&
      (await loop.between(async () => {
        try {
          const tokens = await context.loadSequenceStateFromFile(store.statePath(entry), slot.id, contextSize);
          if (tokens.length === entry.tokens.length && tokens.every((t, i) => t === entry.tokens[i])) return true;
        } catch {
          // Refused by llama.cpp (wrong magic or version, short data, cells that do not fit).
        }
        context.removeTokenCellsFromSequence(slot.id, 0, -1);
        return false;
      }));
    if (!loaded) {
      if (intact) slot.tokens.length = 0;
      await store.discard(entry);
      return false;
    }
    slot.tokens.length = 0;
    for (const t of entry.tokens) slot.tokens.push(t as Token);
    store.touch(entry);
    return true;
  }
}
