/** JSON schemas for the OpenAI routes: types and ranges; cross-field rules live in request.ts. */

/** `null` means unset for every optional field (clients send `temperature: null`, `user: null`). */
function orNull<T extends Record<string, unknown>>(schema: T): T {
  if ("type" in schema) {
    const type = schema.type;
    return { ...schema, type: Array.isArray(type) ? [...new Set([...type, "null"])] : [type, "null"] };
  }
  if ("anyOf" in schema) return { ...schema, anyOf: [...(schema.anyOf as object[]), { type: "null" }] };
  return schema;
}

function allOrNull<T extends Record<string, Record<string, unknown>>>(props: T): T {
  return Object.fromEntries(Object.entries(props).map(([k, v]) => [k, orNull(v)])) as T;
}

const sampling = allOrNull({
  temperature: { type: "number", minimum: 0, maximum: 2 },
  top_p: { type: "number", minimum: 0, maximum: 1 },
  // Extensions llama-server and LM Studio accept as well.
  top_k: { type: "integer", minimum: 0 },
  min_p: { type: "number", minimum: 0, maximum: 1 },
  repeat_penalty: { type: "number", minimum: 0, maximum: 10 },
  max_tokens: { type: "integer", minimum: 1 },
  // llama-server's name for max_tokens; -1 means no limit.
  n_predict: { type: "integer", minimum: -1 },
  seed: { type: "integer" },
  presence_penalty: { type: "number", minimum: -2, maximum: 2 },
  frequency_penalty: { type: "number", minimum: -2, maximum: 2 },
  logit_bias: {
    type: "object",
    patternProperties: { "^[0-9]+$": { type: "number", minimum: -100, maximum: 100 } },
    additionalProperties: false,
  },
  stop: {
    anyOf: [
      { type: "string", minLength: 1 },
      { type: "array", items: { type: "string", minLength: 1 }, maxItems: 16 },
    ],
  },
  stream: { type: "boolean" },
  stream_options: {
    type: "object",
    properties: { include_usage: { type: ["boolean", "null"] }, include_obfuscation: { type: ["boolean", "null"] } },
    additionalProperties: false,
  },
  n: { type: "integer", minimum: 1, maximum: 128 },
  // llama-server's raw grammar and schema fields.
  grammar: { type: "string" },
  json_schema: { type: ["object", "boolean"] },
  // Accepted and ignored (docs/api.md): they do not change the answer here.
  user: { type: "string" },
  prompt_cache_key: { type: "string" },
  safety_identifier: { type: "string" },
  metadata: { type: "object" },
  store: { type: "boolean" },
  service_tier: { type: "string" },
  cache_prompt: { type: "boolean" },
  id_slot: { type: "integer" },
  samplers: { anyOf: [{ type: "array", items: { type: "string" } }, { type: "string" }] },
  timings_per_token: { type: "boolean" },
  return_progress: { type: "boolean" },
  // Refused in request.ts unless off: they would change the answer and Shimmy cannot honour them.
  ignore_eos: { type: "boolean" },
  n_probs: { type: "integer", minimum: 0 },
  typical_p: { type: "number" },
  mirostat: { type: "integer" },
  dry_multiplier: { type: "number" },
  xtc_probability: { type: "number" },
});

const contentPart = {
  type: "object",
  required: ["type"],
  properties: { type: { type: "string" }, text: { type: "string" } },
} as const;

const toolCall = {
  type: "object",
  required: ["function"],
  properties: {
    id: { type: "string" },
    type: { enum: ["function"] },
    function: {
      type: "object",
      required: ["name"],
      properties: { name: { type: "string", minLength: 1 }, arguments: { type: ["string", "object", "null"] } },
    },
    index: { type: "integer" },
  },
} as const;

const message = {
  type: "object",
  required: ["role"],
  properties: {
    role: { enum: ["system", "developer", "user", "assistant", "tool", "function"] },
    content: { anyOf: [{ type: "string" }, { type: "null" }, { type: "array", items: contentPart }] },
    name: { type: ["string", "null"] },
    tool_call_id: { type: ["string", "null"] },
    tool_calls: { type: ["array", "null"], items: toolCall },
    function_call: { type: ["object", "null"] },
    refusal: { type: ["string", "null"] },
    reasoning_content: { type: ["string", "null"] },
    audio: {},
  },
  additionalProperties: false,
} as const;

const tool = {
  type: "object",
  required: ["type"],
  properties: {
    type: { type: "string" },
    function: {
      type: "object",
      required: ["name"],
      properties: {
        name: { type: "string", minLength: 1, maxLength: 64, pattern: "^[a-zA-Z0-9_.:-]+$" },
        description: { type: ["string", "null"] },
        parameters: { type: ["object", "null"] },
        strict: { type: ["boolean", "null"] },
      },
      additionalProperties: false,
    },
  },
} as const;

export const chatCompletionBody = {
  type: "object",
  required: ["model", "messages"],
  properties: {
    model: { type: "string", minLength: 1 },
    messages: { type: "array", minItems: 1, items: message },
    max_completion_tokens: { type: ["integer", "null"], minimum: 1 },
    ...sampling,
    logprobs: { type: ["boolean", "null"] },
    top_logprobs: { type: ["integer", "null"], minimum: 0, maximum: 20 },
    tools: { type: ["array", "null"], items: tool },
    tool_choice: {},
    parallel_tool_calls: { type: ["boolean", "null"] },
    functions: { type: ["array", "null"] },
    function_call: {},
    response_format: { type: ["object", "null"], required: ["type"], properties: { type: { type: "string" } } },
    chat_template_kwargs: { type: ["object", "null"] },
    reasoning_format: { type: ["string", "null"] },
    reasoning_effort: { type: ["string", "null"] },
    verbosity: { type: ["string", "null"] },
    modalities: { type: ["array", "null"] },
    audio: {},
    prediction: {},
    web_search_options: {},
  },
  additionalProperties: false,
} as const;

export const completionBody = {
  type: "object",
  required: ["model", "prompt"],
  properties: {
    model: { type: "string", minLength: 1 },
    prompt: { anyOf: [{ type: "string" }, { type: "array", minItems: 1, maxItems: 1, items: { type: "string" } }] },
    echo: { type: ["boolean", "null"] },
    suffix: { type: ["string", "null"] },
    best_of: { type: ["integer", "null"], minimum: 1 },
    logprobs: { type: ["integer", "null", "boolean"], minimum: 0, maximum: 5 },
    ...sampling,
  },
  additionalProperties: false,
} as const;
