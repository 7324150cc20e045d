import { parseDuration } from "../../config/config.js";
import { PENALTY_WINDOW } from "../../engine/sampler-config.js";
import type { ChatMessage, GenerationRequest, OutputConstraint, SamplingOptions, ToolSpec } from "../../engine/types.js";
import { ApiError } from "../errors.js";

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

export interface OllamaToolCall {
  id?: string | null;
  function: { index?: number | null; name: string; arguments?: Record<string, unknown> | string | null };
}

export interface OllamaMessage {
  role: ChatMessage["role"];
  content?: string | null;
  images?: string[] | null;
  thinking?: string | null;
  tool_calls?: OllamaToolCall[] | null;
  tool_name?: string | null;
  tool_call_id?: string | null;
}

export interface OllamaTool {
  type: string;
  function: { name: string; description?: string | null; parameters?: object | null };
}

export interface ChatBody extends CommonBody {
  messages?: OllamaMessage[] | null;
  tools?: OllamaTool[] | null;
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
  typical_p: 1,
  tfs_z: 1,
  mirostat: 0,
  mirostat_tau: undefined,
  mirostat_eta: undefined,
  penalize_newline: undefined,
  draft_num_predict: undefined,
};

/**
 * Runner options: how a server runs models (set when `shimmy serve` starts: --threads,
 * --batch-size, …). They do not change the answer, so they are accepted and ignored, as editors
 * send them with every request.
 */
export const RUNNER_OPTIONS = ["num_thread", "num_batch", "num_gpu", "main_gpu", "low_vram", "f16_kv", "use_mmap", "use_mlock", "numa", "num_keep", "vocab_only", "logits_all"] as const;

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
    if ((RUNNER_OPTIONS as readonly string[]).includes(key)) continue;
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

/** `format`: "json" (any JSON object) or a JSON Schema; "" or absent = free text. */
export function constraintFrom(format: unknown): OutputConstraint | undefined {
  if (format === undefined || format === null || format === "") return undefined;
  if (format === "json") return { kind: "json_object" };
  if (typeof format === "object" && !Array.isArray(format)) return { kind: "json_schema", schema: format };
  throw badRequest(`invalid format: send "json" or a JSON Schema object`);
}

/** `think`: true or a level ("low", "medium", "high") asks for the reasoning (refused where the model has none); false turns it off where the template can. */
export function thinkFrom(think: boolean | string | null | undefined): { reasoning: "separate" | "require"; returned: boolean; templateVariables?: Record<string, unknown> } {
  if (think === false) return { reasoning: "separate", returned: false, templateVariables: { enable_thinking: false } };
  if (think === undefined || think === null) return { reasoning: "separate", returned: true };
  if (typeof think === "string" && !["low", "medium", "high"].includes(think)) throw badRequest(`invalid think value "${think}": send true, false, "low", "medium" or "high"`);
  return { reasoning: "require", returned: true, templateVariables: typeof think === "string" ? { reasoning_effort: think } : undefined };
}

/** `logprobs` / `top_logprobs` → the engine's request, checked. */
export function logprobsFrom(body: CommonBody): { top: number } | undefined {
  if (body.top_logprobs != null && (body.top_logprobs < 0 || body.top_logprobs > 20)) throw badRequest("top_logprobs must be between 0 and 20");
  if (!body.logprobs) {
    if (body.top_logprobs) throw badRequest("top_logprobs requires logprobs: true");
    return undefined;
  }
  return { top: body.top_logprobs ?? 0 };
}

export function refuseUnsupportedGenerate(body: GenerateBody, model: string): void {
  if (body.images?.length) throw badRequest(`"${model}" does not support images`);
  if (body.suffix) notYet("'suffix' (fill-in-the-middle)");
  if (body.template) notYet("'template' (a per-request prompt template)");
  if (body.context?.length) notYet("'context' (deprecated in Ollama; send the conversation to /api/chat)");
  if (body.truncate === true) notYet("'truncate: true' (a prompt longer than the context is an error in Shimmy)");
  if (body.shift === true) notYet("'shift: true' (Shimmy never shifts the context)");
  if (body.raw && body.system) throw badRequest("'system' cannot be used with 'raw': a raw prompt is sent as is; put the system text in the prompt");
}

/** Ollama's tools → the engine's (function tools only). */
export function toolsFrom(tools: OllamaTool[] | null | undefined): ToolSpec[] | undefined {
  if (!tools?.length) return undefined;
  return tools.map((t) => {
    if (t.type !== "function") throw badRequest(`tool type "${t.type}" is not supported; only "function" tools are`);
    return { name: t.function.name, description: t.function.description ?? undefined, parameters: t.function.parameters ?? undefined };
  });
}

/** Ollama chat messages → engine messages; images are refused, never dropped. */
export function messagesFrom(body: ChatBody, model: string): ChatMessage[] {
  return (body.messages ?? []).map((m, i) => {
    if (m.images?.length) throw badRequest(`"${model}" does not support images (messages[${i}].images)`);
    const toolCalls = m.tool_calls?.map((c, j) => {
      let args = c.function.arguments ?? {};
      if (typeof args === "string") {
        try {
          args = JSON.parse(args) as Record<string, unknown>;
        } catch {
          throw badRequest(`messages[${i}].tool_calls[${j}].function.arguments is not a JSON object`);
        }
      }
      return { id: c.id ?? `call_${i}_${j}`, name: c.function.name, arguments: args };
    });
    return {
      role: m.role,
      content: m.content ?? "",
      name: m.tool_name ?? undefined,
      toolCallId: m.tool_call_id ?? undefined,
      toolCalls: toolCalls?.length ? toolCalls : undefined,
      reasoning: m.thinking ?? undefined,
    };
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
