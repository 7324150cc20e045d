/** The draft lengths a job may use: `max` tokens at most, and no draft shorter than `min`. */
export interface DraftBounds {
  min: number;
  max: number;
}

/** After this many drafts in a row with nothing accepted, drafting pauses for the longest while. */
const LONGEST_PAUSE_STEPS = 64;

/**
 * One job's draft length, adapted to what the target model accepts: it grows while whole drafts
 * are accepted and shrinks to just past the accepted run on a rejection; drafts rejected at their
 * first token pause drafting for 2, 4, 8… steps (up to 64). A workload that never accepts then
 * pays for about one wasted draft per 64 tokens, and a job that finds text to copy again is back
 * at full length within a few steps.
 */
export class DraftBudget {
  private length: number;
  private misses = 0;
  private pause = 0;

  constructor(private readonly bounds: DraftBounds) {
    this.length = bounds.max;
  }

  /** Draft tokens to ask for this step (0: none); `room` bounds it (tokens left, batch space). */
  next(room: number): number {
    if (this.pause > 0) {
      this.pause--;
      return 0;
    }
    const n = Math.min(this.length, room);
    return n >= this.bounds.min ? n : 0;
  }

  /** What the target model made of a draft of `drafted` tokens: the first `accepted` matched. */
  record(drafted: number, accepted: number): void {
    if (drafted === 0) return;
    if (accepted === drafted) this.length = Math.min(this.bounds.max, this.length * 2);
    else this.length = Math.max(this.bounds.min, accepted + 1);
    if (accepted > 0) {
      this.misses = 0;
      return;
    }
    this.misses++;
    this.pause = Math.min(LONGEST_PAUSE_STEPS, 2 ** this.misses);
  }
}
