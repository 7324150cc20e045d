/** After this many losing checks in a row, drafting stays off for the longest while. */
const LONGEST_PAUSE_STEPS = 1024;
/** Weight of the newest step in the running cost per token. */
const WEIGHT = 0.25;

interface Costs {
  /** Running ms per emitted token of steps without drafts, and of steps with drafts (undefined: none yet). */
  plain?: number;
  drafted?: number;
  /** Steps with drafts since drafting was last resumed. */
  draftSteps: number;
}

/** Steps with drafts that decide whether they lose: one rejected draft alone says little. */
const JUDGED_AFTER = 2;

/**
 * Whether drafts pay on this model and machine: checking k draft tokens costs a step of k + 1
 * tokens, which on a CPU whose one-token step is already compute-bound costs several times a
 * one-token step, so even well-accepted drafts can lose. The loop reports each step's process CPU
 * time (what the step cost, whatever else the machine runs; wall time on a shared machine swings
 * too much to judge by) and the tokens it emitted; when steps with drafts cost more per emitted
 * token than steps without (for the same number of streams), drafting pauses for 8, 16, 32…
 * steps (up to 1024), then is tried again (judged on its first two steps); a win shortens the
 * next pause by one doubling only, so one lucky step does not undo a losing record. A workload
 * where drafts never pay then spends two steps in 1024 on drafts.
 */
export class DraftPayoff {
  private readonly costs = new Map<number, Costs>();
  private pause = 0;
  private losses = 0;

  /** Whether this step may carry drafts. */
  allows(): boolean {
    if (this.pause === 0) return true;
    this.pause--;
    return false;
  }

  /** A step of `streams` generating jobs (nothing else in its batch) cost `ms` of CPU time and emitted `tokens`. */
  record(streams: number, drafted: boolean, ms: number, tokens: number): void {
    if (tokens === 0) return;
    const costs = this.costs.get(streams) ?? { draftSteps: 0 };
    this.costs.set(streams, costs);
    const perToken = ms / tokens;
    const key = drafted ? "drafted" : "plain";
    costs[key] = costs[key] === undefined ? perToken : costs[key] + WEIGHT * (perToken - costs[key]);
    if (drafted) costs.draftSteps++;
    if (!drafted || costs.plain === undefined || costs.draftSteps < JUDGED_AFTER) return;
    if (costs.drafted! <= costs.plain) {
      this.losses = Math.max(0, this.losses - 1);
      return;
    }
    this.losses++;
    this.pause = Math.min(LONGEST_PAUSE_STEPS, 4 * 2 ** this.losses);
    // The next try is judged on its own steps, not on the average that lost.
    costs.drafted = undefined;
    costs.draftSteps = 0;
  }
}
