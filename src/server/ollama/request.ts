import { parseDuration } from "../../config/config.js";
import { PENALTY_WINDOW } from "../../engine/sampler-config.js";
import type { ChatMessage, GenerationRequest, SamplingOptions } from "../../engine/types.js";
import { ApiError } from "../openai/errors.js";

/** Body fields as validated by schemas.ts. */
export interface OllamaOptions {
  temperature?: number;
  top_k?: number;
  top_p?: number;
  min_p?: number;
  seed?: number;
  num_predict?: number;
  num_ctx?: number;
  repeat_penalty?: number;
  repeat_last_n?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  stop?: string[];
  [other: string]: unknown;
}

interface CommonBody {
  model: string;
  options?: OllamaOptions | null;
  stream?: boolean | null;
  keep_alive?: number | string | null;
  format?: unknown;
  think?: boolean | string | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
}

export interface OllamaMessage {
  role: ChatMessage["role"];
  content?: string | null;
  images?: string[] | null;
  thinking?: string | null;
  tool_calls?: unknown[] | null;
  tool_name?: string | null;
}

export interface ChatBody extends CommonBody {
  messages?: OllamaMessage[] | null;
  tools?: unknown[] | null;
}

export interface GenerateBody extends CommonBody {
  prompt?: string | null;
  system?: string | null;
  raw?: boolean | null;
  suffix?: string | null;
  template?: string | null;
  images?: string[] | null;
  context?: number[] | null;
  truncate?: boolean | null;
  shift?: boolean | null;
}

const badRequest = (message: string): ApiError => new ApiError(400, message);

const notYet = (what: string): never => {
  throw badRequest(`${what} is not supported by Shimmy yet; remove it from the request`);
};

/**
 * Ollama's defaults for options a request leaves out (api/types.go DefaultOptions), so a client
 * gets the sampling it gets from Ollama: temperature 0.8, top_k 40, top_p 0.9, repeat_penalty
 * 1.1 over the last 64 tokens, a random seed, no token limit.
 */
const DEFAULTS = { temperature: 0.8, top_k: 40, top_p: 0.9, repeat_penalty: 1.1 } as const;

/** Options Shimmy has no equivalent for, and the value that means "off" (accepted); undefined: none is. */
const UNSUPPORTED_OPTIONS: Record<string, unknown> = {
  num_keep: 4,
  typical_p: 1,
  tfs_z: 1,
  mirostat: 0,
  mirostat_tau: undefined,
  mirostat_eta: undefined,
  penalize_newline: undefined,
  logits_all: undefined,
  draft_num_predict: undefined,
  vocab_only: undefined,
};

/** Runner options: how the server runs models, set when it starts, not per request. */
const SERVER_SETTINGS: Record<string, string> = {
  num_thread: "--threads / --threads-batch",
  num_batch: "--batch-size",
  num_gpu: "--gpu",
  main_gpu: "--gpu",
  low_vram: "--gpu",
  f16_kv: "(the KV cache is always f16)",
  use_mmap: "(always on)",
  use_mlock: "(not offered)",
  numa: "(not offered)",
};

export interface RequestParts {
  sampling: SamplingOptions;
  maxTokens: number | undefined;
  stop: string[];
  contextLimit: number | undefined;
}

/** `options` → the engine's sampling, token limit, stop strings and context limit; refuses what Shimmy cannot honour. */
export function fromOptions(options: OllamaOptions | null | undefined): RequestParts {
  const o = options ?? {};
  for (const [key, value] of Object.entries(o)) {
    if (value === undefined || value === null) continue;
    if (key in SERVER_SETTINGS) throw badRequest(`option '${key}' is a server setting in Shimmy, not a per-request one; start \`shimmy serve\` with ${SERVER_SETTINGS[key]} instead`);
    if (key in UNSUPPORTED_OPTIONS && value !== UNSUPPORTED_OPTIONS[key]) notYet(`option '${key}'`);
  }
  if (o.repeat_last_n !== undefined && o.repeat_last_n !== PENALTY_WINDOW) notYet(`option 'repeat_last_n' other than ${PENALTY_WINDOW}`);
  const n = o.num_predict;
  if (n !== undefined && n !== -1 && n !== -2 && n < 1) throw badRequest(`option 'num_predict' must be a positive number of tokens, -1 (no limit) or -2 (fill the context); got ${n}`);
  return {
    sampling: {
      temperature: o.temperature ?? DEFAULTS.temperature,
      topK: o.top_k ?? DEFAULTS.top_k,
      topP: o.top_p ?? DEFAULTS.top_p,
      minP: o.min_p,
      // Ollama: a negative seed means a random one.
      seed: o.seed !== undefined && o.seed >= 0 ? o.seed : undefined,
      repeatPenalty: o.repeat_penalty ?? DEFAULTS.repeat_penalty,
      presencePenalty: o.presence_penalty,
      frequencyPenalty: o.frequency_penalty,
    },
    // -1 and -2 both run to the end of the context: Shimmy never shifts it.
    maxTokens: n !== undefined && n > 0 ? n : undefined,
    stop: o.stop ?? [],
    contextLimit: o.num_ctx,
  };
}

/** Ollama's keep_alive → milliseconds (negative: never unload; 0: unload when done); undefined when absent. */
export function keepAliveMs(value: number | string | null | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  try {
    return parseDuration(value);
  } catch {
    throw badRequest(`keep_alive: "${value}" is not a duration (send seconds as a number, or a string like "5m", "1h30m", "0", "-1m")`);
  }
}

/** Fields both generation routes refuse: structured output, thinking, log-probabilities. */
export function refuseUnsupportedCommon(body: CommonBody, model: string): void {
  if (body.format !== undefined && body.format !== null && body.format !== "") notYet("'format' (structured output)");
  if (body.think !== undefined && body.think !== null && body.think !== false) throw badRequest(`"${model}" does not support thinking`);
  if (body.logprobs) notYet("'logprobs'");
  if (body.top_logprobs) notYet("'top_logprobs'");
}

export function refuseUnsupportedGenerate(body: GenerateBody, model: string): void {
  refuseUnsupportedCommon(body, model);
  if (body.images?.length) throw badRequest(`"${model}" does not support images`);
  if (body.suffix) notYet("'suffix' (fill-in-the-middle)");
  if (body.template) notYet("'template' (a per-request prompt template)");
  if (body.context?.length) notYet("'context' (deprecated in Ollama; send the conversation to /api/chat)");
  if (body.truncate === true) notYet("'truncate: true' (a prompt longer than the context is an error in Shimmy)");
  if (body.shift === true) notYet("'shift: true' (Shimmy never shifts the context)");
  if (body.raw && body.system) throw badRequest("'system' cannot be used with 'raw': a raw prompt is sent as is; put the system text in the prompt");
}

/** Ollama chat messages → engine messages; images, tool calls and thinking are refused, never dropped. */
export function messagesFrom(body: ChatBody, model: string): ChatMessage[] {
  refuseUnsupportedCommon(body, model);
  if (body.tools?.length) notYet("'tools'");
  return (body.messages ?? []).map((m, i) => {
    if (m.images?.length) throw badRequest(`"${model}" does not support images (messages[${i}].images)`);
    if (m.tool_calls?.length) notYet(`tool calls (messages[${i}].tool_calls)`);
    if (m.thinking) throw badRequest(`"${model}" does not support thinking (messages[${i}].thinking)`);
    return { role: m.role, content: m.content ?? "", name: m.tool_name ?? undefined };
  });
}

/**
 * /api/generate's prompt as engine input. Like Ollama, the model's chat template wraps the prompt
 * (and `system`) unless `raw`; a model without a template gets the prompt as is (Ollama's default
 * template is the bare prompt), so a `system` there has nowhere to go and is refused.
 */
export function generateInput(body: GenerateBody, prompt: string, hasChatTemplate: boolean): GenerationRequest["input"] {
  if (body.raw) return { kind: "text", text: prompt };
  if (!hasChatTemplate) {
    if (body.system) throw badRequest(`"${body.model}" has no chat template, so 'system' has no place in its prompt; put the text in the prompt (or use /api/chat)`);
    return { kind: "text", text: prompt };
  }
  const messages: ChatMessage[] = body.system ? [{ role: "system", content: body.system }] : [];
  messages.push({ role: "user", content: prompt });
  return { kind: "chat", messages };
}
