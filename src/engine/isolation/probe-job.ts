import type { ModelSpec } from "../../discovery/types.js";
import type { LlamaRuntimeOptions } from "../llama.js";
import type { LoadOptions } from "../loaded-model.js";

/** What the probe child is asked to do: load one model as the server would and decode a few tokens. */
export interface ProbeJob {
  spec: ModelSpec;
  ggufPath: string;
  runtime: LlamaRuntimeOptions;
  load: LoadOptions;
  /** Tokens to decode greedily after the prompt. */
  tokens: number;
}

/** The child's last stdout line. */
export type ProbeReport = { ok: true; loadMs: number; decoded: number } | { ok: false; error: string };

/** The child's exit code after an error it caught (a JS error, not a crash). */
export const PROBE_CAUGHT_ERROR_EXIT = 3;
