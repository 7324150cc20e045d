import type { LlamaRuntimeOptions } from "../llama.js";

/** What the main thread asks of the prompt worker; each job has an id its reply carries back. */
export type PromptJob =
  | { kind: "render"; id: number; source: string; context: Record<string, unknown> }
  | { kind: "tokenize"; id: number; modelPath: string; text: string; parseSpecial: boolean }
  | { kind: "forget"; modelPath: string }
  | { kind: "quit" };

export type PromptReply =
  | { id: number; text: string }
  | { id: number; tokens: Uint32Array }
  | { id: number; error: string };

/** Handed to the worker at start: the runtime it loads must be the one the main thread uses. */
export interface PromptWorkerData {
  runtime: LlamaRuntimeOptions;
}
