import type { Token } from "node-llama-cpp";
import { type DraftBounds, DraftBudget } from "./draft-budget.js";
import { promptLookupDraft } from "./prompt-lookup.js";

/** Proposes up to `max` tokens to follow `history` + `last` (what the sequence holds, and its pending token). */
export type Drafter = (history: readonly Token[], last: Token, max: number) => Token[];

/** Speculative decoding for one job: who drafts, how long, and what came of it. */
export class Speculation {
  /** Draft tokens put before the target model. */
  drafted = 0;
  /** Of those, tokens the target model sampled too (emitted without a step of their own). */
  accepted = 0;
  private readonly budget: DraftBudget;

  constructor(
    private readonly drafter: Drafter,
    private readonly bounds: DraftBounds,
  ) {
    this.budget = new DraftBudget(bounds);
  }

  /** A draft for this step, at most `room` tokens; empty when there is nothing worth drafting. */
  draft(history: readonly Token[], last: Token, room: number): Token[] {
    const n = this.budget.next(room);
    if (n === 0) return [];
    const draft = this.drafter(history, last, n);
    return draft.length >= this.bounds.min ? draft : [];
  }

  /** The target model accepted the first `accepted` of `drafted` tokens. */
  record(drafted: number, accepted: number): void {
    this.drafted += drafted;
    this.accepted += accepted;
    this.budget.record(drafted, accepted);
  }
}

/** Prompt-lookup speculation with these draft bounds. */
export const promptLookup = (bounds: DraftBounds): Speculation => new Speculation(promptLookupDraft, bounds);
