/** JSON schema of a Responses API body: types and ranges; item shapes and cross-field rules are in request.ts. */

const nullable = (type: string | string[]): { type: string[] } => ({ type: [...(Array.isArray(type) ? type : [type]), "null"] });

const textPart = {
  type: "object",
  required: ["type"],
  properties: {
    type: { type: "string" },
    text: { type: "string" },
    // Replayed output_text parts carry these; they do not change the prompt.
    annotations: { type: "array" },
    logprobs: { type: "array" },
  },
} as const;

/** A message item, as sent (`{role, content}`) or replayed from an earlier response's output. */
const messageItem = {
  type: "object",
  required: ["role", "content"],
  properties: {
    type: { const: "message" },
    id: { type: "string" },
    status: { type: "string" },
    phase: nullable("string"),
    role: { enum: ["user", "assistant", "system", "developer"] },
    content: { type: ["string", "array"], items: textPart },
  },
  additionalProperties: false,
} as const;

const functionCallItem = {
  type: "object",
  required: ["type", "call_id", "name", "arguments"],
  properties: {
    type: { const: "function_call" },
    id: { type: "string" },
    status: { type: "string" },
    call_id: { type: "string", minLength: 1 },
    name: { type: "string", minLength: 1 },
    arguments: { type: "string" },
  },
  additionalProperties: false,
} as const;

const functionCallOutputItem = {
  type: "object",
  required: ["type", "call_id", "output"],
  properties: {
    type: { const: "function_call_output" },
    id: nullable("string"),
    status: nullable("string"),
    call_id: { type: "string", minLength: 1 },
    output: { type: ["string", "array"], items: textPart },
  },
  additionalProperties: false,
} as const;

/** The type decides the item's schema, so a validation error names the field inside the item. */
const inputItem = {
  type: "object",
  properties: { type: { type: "string" } },
  allOf: [
    { if: { properties: { type: { const: "message" } } }, then: messageItem },
    { if: { required: ["type"], properties: { type: { const: "function_call" } } }, then: functionCallItem },
    { if: { required: ["type"], properties: { type: { const: "function_call_output" } } }, then: functionCallOutputItem },
  ],
} as const;

const tool = {
  type: "object",
  required: ["type"],
  properties: { type: { type: "string" } },
  if: { properties: { type: { const: "function" } } },
  then: {
    required: ["name"],
    properties: {
      type: { const: "function" },
      name: { type: "string", minLength: 1, maxLength: 64, pattern: "^[a-zA-Z0-9_.:-]+$" },
      description: nullable("string"),
      parameters: nullable("object"),
      strict: nullable("boolean"),
    },
    additionalProperties: false,
  },
} as const;

const textFormat = {
  type: "object",
  required: ["type"],
  properties: {
    type: { enum: ["text", "json_object", "json_schema"] },
    name: { type: "string" },
    description: { type: "string" },
    schema: { type: "object" },
    strict: nullable("boolean"),
  },
  if: { properties: { type: { const: "json_schema" } } },
  then: { required: ["schema"] },
  additionalProperties: false,
} as const;

export const responsesBody = {
  type: "object",
  required: ["model", "input"],
  properties: {
    model: { type: "string", minLength: 1 },
    // Not anyOf: a bad item's error then names the field inside it.
    input: { type: ["string", "array"], items: inputItem },
    instructions: nullable("string"),
    max_output_tokens: { type: ["integer", "null"], minimum: 1 },
    temperature: { type: ["number", "null"], minimum: 0, maximum: 2 },
    top_p: { type: ["number", "null"], minimum: 0, maximum: 1 },
    tools: { type: "array", items: tool },
    tool_choice: {},
    parallel_tool_calls: nullable("boolean"),
    text: {
      type: "object",
      properties: { format: textFormat, verbosity: { enum: ["low", "medium", "high", null] } },
      additionalProperties: false,
    },
    reasoning: {
      type: ["object", "null"],
      properties: {
        effort: { enum: ["none", "minimal", "low", "medium", "high", "xhigh", null] },
        summary: { enum: ["auto", "concise", "detailed", null] },
        generate_summary: { enum: ["auto", "concise", "detailed", null] },
      },
      additionalProperties: false,
    },
    stream: nullable("boolean"),
    stream_options: { type: ["object", "null"], properties: { include_obfuscation: { type: "boolean" } }, additionalProperties: false },
    include: { type: ["array", "null"], items: { type: "string" } },
    top_logprobs: { type: ["integer", "null"], minimum: 0, maximum: 20 },
    truncation: { enum: ["auto", "disabled", null] },
    // Accepted and ignored (docs/api.md): they do not change the answer here.
    metadata: nullable("object"),
    user: { type: "string" },
    store: nullable("boolean"),
    service_tier: nullable("string"),
    prompt_cache_key: nullable("string"),
    prompt_cache_retention: nullable("string"),
    safety_identifier: nullable("string"),
    // Refused in request.ts when set: they need state Shimmy does not keep.
    previous_response_id: nullable("string"),
    conversation: {},
    prompt: {},
    background: nullable("boolean"),
  },
  additionalProperties: false,
} as const;
