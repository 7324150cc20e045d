/** JSON schemas for the OpenAI routes: types and ranges; cross-field rules live in request.ts. */

const sampling = {
  temperature: { type: "number", minimum: 0, maximum: 2 },
  top_p: { type: "number", minimum: 0, maximum: 1 },
  // Extensions llama-server and LM Studio accept as well.
  top_k: { type: "integer", minimum: 0 },
  min_p: { type: "number", minimum: 0, maximum: 1 },
  repeat_penalty: { type: "number", minimum: 0, maximum: 10 },
  max_tokens: { type: ["integer", "null"], minimum: 1 },
  seed: { type: ["integer", "null"] },
  presence_penalty: { type: ["number", "null"], minimum: -2, maximum: 2 },
  frequency_penalty: { type: ["number", "null"], minimum: -2, maximum: 2 },
  logit_bias: {
    type: ["object", "null"],
    patternProperties: { "^[0-9]+$": { type: "number", minimum: -100, maximum: 100 } },
    additionalProperties: false,
  },
  stop: {
    anyOf: [
      { type: "string", minLength: 1 },
      { type: "array", items: { type: "string", minLength: 1 }, maxItems: 16 },
      { type: "null" },
    ],
  },
  stream: { type: ["boolean", "null"] },
  stream_options: {
    type: ["object", "null"],
    properties: { include_usage: { type: "boolean" } },
    additionalProperties: false,
  },
  user: { type: "string" },
  n: { type: ["integer", "null"], minimum: 1, maximum: 128 },
  // Known OpenAI parameters Shimmy does not implement yet: typed here, refused in request.ts
  // unless they carry their "off" value.
  logprobs: { type: ["boolean", "null", "integer"] },
  top_logprobs: { type: ["integer", "null"] },
} as const;

const contentPart = {
  type: "object",
  required: ["type"],
  properties: { type: { type: "string" }, text: { type: "string" } },
} as const;

const message = {
  type: "object",
  required: ["role"],
  properties: {
    role: { enum: ["system", "developer", "user", "assistant", "tool"] },
    content: { anyOf: [{ type: "string" }, { type: "null" }, { type: "array", items: contentPart }] },
    name: { type: "string" },
    tool_call_id: { type: "string" },
    tool_calls: { type: "array" },
    refusal: { type: ["string", "null"] },
  },
  additionalProperties: false,
} as const;

export const chatCompletionBody = {
  type: "object",
  required: ["model", "messages"],
  properties: {
    model: { type: "string", minLength: 1 },
    messages: { type: "array", minItems: 1, items: message },
    max_completion_tokens: { type: ["integer", "null"], minimum: 1 },
    ...sampling,
    tools: { type: ["array", "null"] },
    tool_choice: {},
    parallel_tool_calls: { type: ["boolean", "null"] },
    functions: { type: ["array", "null"] },
    function_call: {},
    response_format: { type: ["object", "null"] },
    modalities: { type: ["array", "null"] },
    audio: {},
    prediction: {},
    reasoning_effort: {},
    web_search_options: {},
    store: { type: ["boolean", "null"] },
    metadata: { type: ["object", "null"] },
    service_tier: { type: ["string", "null"] },
  },
  additionalProperties: false,
} as const;

/** Shimmy's WebSocket request (docs/api.md): one prompt or messages, and the sampling fields. */
export const wsGenerateRequest = {
  type: "object",
  required: ["model"],
  properties: {
    model: { type: "string", minLength: 1 },
    prompt: { type: "string" },
    messages: { type: "array", minItems: 1, items: message },
    max_tokens: sampling.max_tokens,
    temperature: sampling.temperature,
    top_p: sampling.top_p,
    top_k: sampling.top_k,
    min_p: sampling.min_p,
    seed: sampling.seed,
    stop: sampling.stop,
    presence_penalty: sampling.presence_penalty,
    frequency_penalty: sampling.frequency_penalty,
  },
  oneOf: [{ required: ["prompt"] }, { required: ["messages"] }],
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
    ...sampling,
  },
  additionalProperties: false,
} as const;
