/** JSON schemas for Ollama's /api routes (api/types.go): types and ranges; the rest is in request.ts. */

/** Sampling options Shimmy honours, and Ollama's other options, typed here and refused in request.ts. */
const options = {
  type: ["object", "null"],
  properties: {
    temperature: { type: "number", minimum: 0 },
    top_k: { type: "integer", minimum: 0 },
    top_p: { type: "number", minimum: 0, maximum: 1 },
    min_p: { type: "number", minimum: 0, maximum: 1 },
    seed: { type: "integer" },
    num_predict: { type: "integer" },
    num_ctx: { type: "integer", minimum: 1 },
    repeat_penalty: { type: "number", minimum: 0 },
    repeat_last_n: { type: "integer" },
    presence_penalty: { type: "number" },
    frequency_penalty: { type: "number" },
    stop: { type: "array", items: { type: "string", minLength: 1 }, maxItems: 16 },
    num_keep: { type: "integer" },
    typical_p: { type: "number" },
    tfs_z: { type: "number" },
    mirostat: { type: "integer" },
    mirostat_tau: { type: "number" },
    mirostat_eta: { type: "number" },
    penalize_newline: { type: "boolean" },
    numa: { type: "boolean" },
    num_batch: { type: "integer" },
    num_gpu: { type: "integer" },
    main_gpu: { type: "integer" },
    low_vram: { type: "boolean" },
    f16_kv: { type: "boolean" },
    vocab_only: { type: "boolean" },
    use_mmap: { type: "boolean" },
    use_mlock: { type: "boolean" },
    num_thread: { type: "integer" },
    logits_all: { type: "boolean" },
    draft_num_predict: { type: "integer" },
  },
  additionalProperties: false,
} as const;

/** A number of seconds or a duration string ("5m", "1h30m", "0", "-1m"). */
const keepAlive = { type: ["number", "string", "null"] } as const;

const common = {
  model: { type: "string", minLength: 1 },
  options,
  stream: { type: ["boolean", "null"] },
  keep_alive: keepAlive,
  format: {},
  think: { type: ["boolean", "string", "null"] },
  logprobs: { type: ["boolean", "null"] },
  top_logprobs: { type: ["integer", "null"] },
} as const;

const message = {
  type: "object",
  required: ["role"],
  properties: {
    role: { enum: ["system", "user", "assistant", "tool"] },
    content: { type: ["string", "null"] },
    images: { type: ["array", "null"], items: { type: "string" } },
    thinking: { type: ["string", "null"] },
    tool_calls: {
      type: ["array", "null"],
      items: {
        type: "object",
        required: ["function"],
        properties: {
          id: { type: ["string", "null"] },
          type: { type: ["string", "null"] },
          function: { type: "object", required: ["name"], properties: { index: { type: ["integer", "null"] }, name: { type: "string", minLength: 1 }, arguments: { type: ["object", "string", "null"] } } },
        },
      },
    },
    tool_name: { type: ["string", "null"] },
    tool_call_id: { type: ["string", "null"] },
  },
  additionalProperties: false,
} as const;

export const chatBody = {
  type: "object",
  required: ["model"],
  properties: {
    ...common,
    // Empty or missing: load (or, with keep_alive 0, unload) the model.
    messages: { type: ["array", "null"], items: message },
    tools: {
      type: ["array", "null"],
      items: {
        type: "object",
        required: ["type", "function"],
        properties: {
          type: { type: "string" },
          // The names every call syntax can carry (OpenAI's rule).
          function: { type: "object", required: ["name"], properties: { name: { type: "string", minLength: 1, maxLength: 64, pattern: "^[a-zA-Z0-9_.:-]+$" }, description: { type: ["string", "null"] }, parameters: { type: ["object", "null"] } } },
        },
      },
    },
  },
  additionalProperties: false,
} as const;

export const generateBody = {
  type: "object",
  required: ["model"],
  properties: {
    ...common,
    // Empty or missing: load (or, with keep_alive 0, unload) the model.
    prompt: { type: ["string", "null"] },
    system: { type: ["string", "null"] },
    raw: { type: ["boolean", "null"] },
    suffix: { type: ["string", "null"] },
    template: { type: ["string", "null"] },
    images: { type: ["array", "null"], items: { type: "string" } },
    context: { type: ["array", "null"], items: { type: "integer" } },
    truncate: { type: ["boolean", "null"] },
    shift: { type: ["boolean", "null"] },
  },
  additionalProperties: false,
} as const;

export const showBody = {
  type: "object",
  properties: {
    model: { type: "string", minLength: 1 },
    // The name the field had before Ollama renamed it to `model`.
    name: { type: "string", minLength: 1 },
    verbose: { type: ["boolean", "null"] },
  },
  anyOf: [{ required: ["model"] }, { required: ["name"] }],
  additionalProperties: false,
} as const;

export const pullBody = {
  type: "object",
  properties: {
    model: { type: "string", minLength: 1 },
    name: { type: "string", minLength: 1 },
    stream: { type: ["boolean", "null"] },
    // Deprecated in Ollama and ignored there too.
    insecure: { type: ["boolean", "null"] },
    username: { type: ["string", "null"] },
    password: { type: ["string", "null"] },
  },
  anyOf: [{ required: ["model"] }, { required: ["name"] }],
  additionalProperties: false,
} as const;

export const deleteBody = {
  type: "object",
  properties: {
    model: { type: "string", minLength: 1 },
    name: { type: "string", minLength: 1 },
  },
  anyOf: [{ required: ["model"] }, { required: ["name"] }],
  additionalProperties: false,
} as const;

export const embedBody = {
  type: "object",
  required: ["model", "input"],
  properties: {
    model: { type: "string", minLength: 1 },
    input: { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" } }] },
    truncate: { type: ["boolean", "null"] },
    dimensions: { type: ["integer", "null"], minimum: 1 },
    keep_alive: keepAlive,
    options,
  },
  additionalProperties: false,
} as const;

/** The legacy /api/embeddings body. */
export const embeddingsBody = {
  type: "object",
  required: ["model", "prompt"],
  properties: {
    model: { type: "string", minLength: 1 },
    prompt: { type: "string" },
    keep_alive: keepAlive,
    options,
  },
  additionalProperties: false,
} as const;
