/**
 * JSON schemas for Anthropic's /v1/messages routes (the shapes of @anthropic-ai/sdk's params):
 * types, ranges and unknown fields; what Shimmy refuses or maps is in request.ts.
 */

const cacheControl = { type: ["object", "null"] } as const;

/** `if` of a block whose `type` is `type`. */
const isType = (type: string) => ({ type: "object", properties: { type: { const: type } } }) as const;

const textBlock = {
  type: "object",
  required: ["type", "text"],
  properties: {
    type: { const: "text" },
    text: { type: "string" },
    // Prompt caching is automatic here (prefix reuse); citations point into the text, which is sent as is.
    cache_control: cacheControl,
    citations: { type: ["array", "null"] },
  },
  additionalProperties: false,
} as const;

/** A block of another type: typed here, refused (or mapped) by type in request.ts. */
const otherBlock = { type: "object", required: ["type"], properties: { type: { type: "string" } } } as const;

const toolResultBlock = {
  type: "object",
  required: ["type", "tool_use_id"],
  properties: {
    type: { const: "tool_result" },
    tool_use_id: { type: "string", minLength: 1 },
    content: { type: ["string", "array"], items: { if: isType("text"), then: textBlock, else: otherBlock } },
    is_error: { type: "boolean" },
    cache_control: cacheControl,
    toolset_name: { type: ["string", "null"] },
  },
  additionalProperties: false,
} as const;

const blockSchemas: Record<string, object> = {
  text: textBlock,
  tool_use: {
    type: "object",
    required: ["type", "id", "name", "input"],
    properties: {
      type: { const: "tool_use" },
      id: { type: "string", minLength: 1 },
      name: { type: "string", minLength: 1 },
      input: { type: "object" },
      cache_control: cacheControl,
      caller: { type: "object" },
      toolset_name: { type: ["string", "null"] },
    },
    additionalProperties: false,
  },
  tool_result: toolResultBlock,
  thinking: {
    type: "object",
    required: ["type", "thinking"],
    properties: { type: { const: "thinking" }, thinking: { type: "string" }, signature: { type: "string" } },
    additionalProperties: false,
  },
};

/** Each known block type checked by its own schema (so an unknown field is named), any other type passed on to be refused by name. */
const contentBlock = {
  ...otherBlock,
  allOf: Object.entries(blockSchemas).map(([type, schema]) => ({ if: isType(type), then: schema })),
} as const;

const message = {
  type: "object",
  required: ["role", "content"],
  properties: {
    role: { enum: ["user", "assistant"] },
    // `type` lists rather than anyOf, so an error inside a block names the block.
    content: { type: ["string", "array"], items: contentBlock },
  },
  additionalProperties: false,
} as const;

/** A client tool; server tools (another `type`) are refused by name in request.ts. */
const customTool = {
  type: "object",
  required: ["name", "input_schema"],
  properties: {
    type: { enum: ["custom", null] },
    name: { type: "string", minLength: 1, maxLength: 128, pattern: "^[a-zA-Z0-9_.:-]+$" },
    description: { type: "string" },
    input_schema: { type: "object" },
    cache_control: cacheControl,
    // Calls are always grammar-enforced against input_schema, and arrive whole.
    strict: { type: "boolean" },
    eager_input_streaming: { type: ["boolean", "null"] },
    allowed_callers: { type: "array", items: { type: "string" } },
    // Refused in request.ts when set: they would change what the model sees.
    defer_loading: { type: "boolean" },
    input_examples: { type: "array", items: { type: "object" } },
  },
  additionalProperties: false,
} as const;

const tool = {
  type: "object",
  properties: { type: { type: ["string", "null"] } },
  if: { type: "object", properties: { type: { enum: ["custom", null] } } },
  then: customTool,
} as const;

const toolChoice = {
  type: "object",
  required: ["type"],
  properties: {
    type: { enum: ["auto", "any", "tool", "none"] },
    name: { type: "string", minLength: 1 },
    disable_parallel_tool_use: { type: "boolean" },
  },
  additionalProperties: false,
} as const;

const thinking = {
  type: "object",
  required: ["type"],
  properties: {
    type: { type: "string" },
    budget_tokens: { type: "integer", minimum: 1 },
    display: { enum: ["summarized", "omitted", null] },
  },
  additionalProperties: false,
} as const;

const outputConfig = {
  type: "object",
  properties: {
    effort: { enum: ["low", "medium", "high", "xhigh", "max", null] },
    format: {
      type: ["object", "null"],
      required: ["type", "schema"],
      properties: { type: { const: "json_schema" }, schema: { type: "object" } },
      additionalProperties: false,
    },
  },
  additionalProperties: false,
} as const;

/** Fields of both routes: what shapes the prompt. */
const promptFields = {
  model: { type: "string", minLength: 1 },
  messages: { type: "array", minItems: 1, items: message },
  system: { type: ["string", "array"], items: textBlock },
  tools: { type: "array", items: tool },
  tool_choice: toolChoice,
  thinking,
  output_config: outputConfig,
  // Accepted and ignored: they do not change the answer here (prefix reuse is automatic).
  cache_control: cacheControl,
  speed: { enum: ["standard", "fast", null] },
  // Refused in request.ts when not empty: Shimmy runs no MCP servers and edits no context.
  mcp_servers: { type: "array" },
  context_management: { type: ["object", "null"] },
} as const;

export const messagesBody = {
  type: "object",
  required: ["model", "max_tokens", "messages"],
  properties: {
    ...promptFields,
    // 0 is Anthropic's cache pre-warm: no output.
    max_tokens: { type: "integer", minimum: 0 },
    stop_sequences: { type: "array", items: { type: "string", minLength: 1 } },
    temperature: { type: "number", minimum: 0, maximum: 1 },
    top_p: { type: "number", minimum: 0, maximum: 1 },
    top_k: { type: "integer", minimum: 0 },
    stream: { type: "boolean" },
    // Accepted and ignored: they do not change the answer here.
    metadata: { type: "object", properties: { user_id: { type: ["string", "null"] } }, additionalProperties: false },
    service_tier: { enum: ["auto", "standard_only"] },
    inference_geo: { type: ["string", "null"] },
    diagnostics: { type: ["object", "null"] },
    // A code-execution container: accepted as an id (no tool here runs in one); skills are refused.
    container: { type: ["string", "object", "null"], properties: { id: { type: ["string", "null"] }, skills: { type: ["array", "null"] } }, additionalProperties: false },
  },
  additionalProperties: false,
} as const;

export const countTokensBody = {
  type: "object",
  required: ["model", "messages"],
  properties: promptFields,
  additionalProperties: false,
} as const;
