import type { Token } from "node-llama-cpp";
import { type DraftBounds, DraftBudget } from "./draft-budget.js";
import type { DraftModel } from "./draft-model.js";
import { promptLookupDraft } from "./prompt-lookup.js";

/**
 * Proposes up to `max` tokens to follow `history` + `last` (what the sequence holds, and its
 * pending token): at once (prompt lookup), or after evaluating a draft model.
 */
export type Drafter = (history: readonly Token[], last: Token, max: number) => Token[] | Promise<Token[]>;

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

  /** Draft tokens to ask for this step, at most `room` (0: none this step). */
  length(room: number): number {
    return this.budget.next(room);
  }

  /** A draft of at most `n` tokens (n from `length`); empty when it is too short to be worth checking. */
  draft(history: readonly Token[], last: Token, n: number): Token[] | Promise<Token[]> {
    const draft = this.drafter(history, last, n);
    return draft instanceof Promise ? draft.then((d) => this.worthChecking(d)) : this.worthChecking(draft);
  }

  private worthChecking(draft: Token[]): Token[] {
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

/** Drafting with a draft model on target slot `slot`'s draft sequence, with these draft bounds. */
export const draftModelSpeculation = (model: DraftModel, slot: number, bounds: DraftBounds): Speculation =>
  new Speculation((history, last, max) => model.draft(slot, history, last, max), bounds);
