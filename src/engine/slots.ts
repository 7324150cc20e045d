import type { Token } from "node-llama-cpp";
import { QueueFullError } from "./errors.js";

export interface Slot {
  /** The sequence id in the model's context. */
  id: number;
  /** What the sequence's KV cache holds (kept by the decode loop). */
  tokens: Token[];
  busy: boolean;
  /** performance.now() when the current request took the slot. */
  takenAt: number;
}

/** A slot handed to a request, and how many leading tokens of its prompt the slot's cache holds. */
export interface SlotGrant {
  slot: Slot;
  shared: number;
}

interface Waiter {
  tokens: readonly Token[];
  resolve: (grant: SlotGrant) => void;
  reject: (reason: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** How many leading tokens two token lists share. */
export function sharedPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * The sequences of one context, handed to requests one at a time. A free slot whose cached
 * tokens share the longest prefix with the new prompt is preferred (multi-turn chats and fixed
 * system prompts then evaluate only their new suffix). Requests beyond the free slots wait FIFO.
 */
export class SlotPool {
  readonly slots: Slot[];
  private readonly waiters: Waiter[] = [];
  /** Moving average of how long a request holds a slot, for Retry-After. */
  private holdMs = 1000;

  constructor(count: number, private readonly model: string, private readonly maxQueue: number) {
    this.slots = Array.from({ length: count }, (_, id) => ({ id, tokens: [], busy: false, takenAt: 0 }));
  }

  get busyCount(): number {
    return this.slots.filter((s) => s.busy).length;
  }

  get queueLength(): number {
    return this.waiters.length;
  }

  private pick(tokens: readonly Token[]): SlotGrant | undefined {
    let best: Slot | undefined;
    let bestShared = -1;
    for (const slot of this.slots) {
      if (slot.busy) continue;
      // Longest shared prefix wins; on a tie the lowest id, which keeps busy slots contiguous —
      // llama.cpp batches only consecutive sequence ids together (see decode-loop.ts).
      const shared = sharedPrefixLength(slot.tokens, tokens);
      if (shared > bestShared) {
        best = slot;
        bestShared = shared;
      }
    }
    return best && { slot: best, shared: bestShared };
  }

  private take(grant: SlotGrant): SlotGrant {
    grant.slot.busy = true;
    grant.slot.takenAt = performance.now();
    return grant;
  }

  acquire(tokens: readonly Token[], signal?: AbortSignal): Promise<SlotGrant> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.waiters.length === 0) {
      const grant = this.pick(tokens);
      if (grant) return Promise.resolve(this.take(grant));
    }
    if (this.waiters.length >= this.maxQueue) {
      // Requests ahead of this one, spread over the slots, each holding one for about holdMs.
      const seconds = Math.max(1, Math.ceil(((this.waiters.length + 1) * this.holdMs) / this.slots.length / 1000));
      return Promise.reject(new QueueFullError(this.model, this.waiters.length, seconds));
    }
    return new Promise<SlotGrant>((resolve, reject) => {
      const waiter: Waiter = { tokens, resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.waiters.indexOf(waiter);
          if (i !== -1) this.waiters.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
    });
  }

  release(slot: Slot): void {
    slot.busy = false;
    this.holdMs = this.holdMs * 0.8 + (performance.now() - slot.takenAt) * 0.2;
    const next = this.waiters.shift();
    if (!next) return;
    if (next.onAbort) next.signal?.removeEventListener("abort", next.onAbort);
    // The slot just freed is free, so there is a pick.
    next.resolve(this.take(this.pick(next.tokens)!));
  }

  /** Fails every waiting request (used on unload). */
  rejectWaiters(reason: Error): void {
    for (const w of this.waiters.splice(0)) {
      if (w.onAbort) w.signal?.removeEventListener("abort", w.onAbort);
      w.reject(reason);
    }
  }
}
