import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { RunningServer } from "../../src/server/server.js";
import { MODELS_DIR, STORIES_CHAT_GGUF, STORIES_GGUF, tempDir } from "./paths.js";
import { startTestServer } from "./server.js";

/** The trained tool-calling model (an HF SafeTensors folder Shimmy converts on first use). */
export const TINY_AGENT_HF = join(MODELS_DIR, "tiny-agent", "hf");
/** How the server names it: the folder's parent and the folder. */
export const AGENT_MODEL = "tiny-agent/hf";
/** The story model with a chat template: structured output is grammar-forced, whatever it would write. */
export const STORY_CHAT_MODEL = "stories260k-chat";

export interface AgentTool {
  type: "function";
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

export interface AgentMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  tool_call_id?: string;
  /** Golden stores arguments as objects (as the chat template renders them). */
  tool_calls?: { id: string; type: "function"; function: { name: string; arguments: Record<string, unknown> } }[];
}

export interface AgentCase {
  name: string;
  tools: AgentTool[] | null;
  messages: AgentMessage[];
  text: string;
}

const goldenCases: AgentCase[] = JSON.parse(readFileSync(join(MODELS_DIR, "tiny-agent", "golden.json"), "utf8")).cases;

/** One golden case by name; its `tools` as an array (empty when the case offers none). */
export function agentCase(name: string): AgentCase & { tools: AgentTool[] } {
  const c = goldenCases.find((x) => x.name === name);
  assert.ok(c, `golden case ${name}`);
  return { ...c, tools: c.tools ?? [] };
}

/** The calls a golden text makes: each `<tool_call>` block's JSON, in order. */
export function goldenCalls(text: string): { name: string; arguments: Record<string, unknown> }[] {
  return [...text.matchAll(/<tool_call>\n(.*?)\n<\/tool_call>/gs)].map((m) => JSON.parse(m[1]!));
}

/** A golden thinking text split as a reasoning parser must split it. */
export function goldenThinking(text: string): { reasoning: string; content: string } {
  const m = /^<think>\n(.*?)\n<\/think>\n\n(.*)$/s.exec(text);
  assert.ok(m, "a <think> block then the answer");
  return { reasoning: m[1]!, content: m[2]! };
}

/** The tool definition golden uses for `name` (every case shares the same five definitions). */
export function agentTool(name: string): AgentTool {
  for (const c of goldenCases) {
    const t = c.tools?.find((x) => x.function.name === name);
    if (t) return t;
  }
  return assert.fail(`no golden tool ${name}`);
}

/**
 * A real server over tiny-agent and both stories GGUFs (threads 1), converting tiny-agent into a
 * private cache; `close` also removes that cache.
 */
export async function startAgentServer(): Promise<RunningServer> {
  const tmp = tempDir("shimmy-agents-");
  // Three slots: n = 3 takes one each.
  const server = await startTestServer({ modelPaths: [TINY_AGENT_HF, STORIES_GGUF, STORIES_CHAT_GGUF], parallel: 3 }, (c) => {
    c.cacheDir = join(tmp.path, "cache");
  });
  return {
    ...server,
    close: async () => {
      await server.close();
      tmp.cleanup();
    },
  };
}

/** Strict schemas of the shapes structured output must handle; free strings are bounded to keep runs short. */
export const STRUCTURED_SCHEMAS: Record<string, Record<string, unknown>> = {
  nested: {
    type: "object",
    properties: {
      title: { type: "string", maxLength: 24 },
      author: { type: "object", properties: { name: { type: "string", maxLength: 16 }, age: { type: "integer" } }, required: ["name", "age"], additionalProperties: false },
    },
    required: ["title", "author"],
    additionalProperties: false,
  },
  enum: {
    type: "object",
    properties: { mood: { type: "string", enum: ["happy", "sad", "angry"] }, weather: { enum: ["sun", "rain", 3] } },
    required: ["mood", "weather"],
    additionalProperties: false,
  },
  "array of objects": {
    type: "object",
    properties: {
      toys: {
        type: "array",
        minItems: 1,
        maxItems: 3,
        items: { type: "object", properties: { name: { type: "string", maxLength: 12 }, broken: { type: "boolean" } }, required: ["name", "broken"], additionalProperties: false },
      },
    },
    required: ["toys"],
    additionalProperties: false,
  },
  nullable: {
    type: "object",
    properties: { nickname: { type: ["string", "null"], maxLength: 12 }, score: { anyOf: [{ type: "number" }, { type: "null" }] } },
    required: ["nickname", "score"],
    additionalProperties: false,
  },
  $ref: {
    type: "object",
    $defs: { point: { type: "object", properties: { x: { type: "integer" }, y: { type: "integer" } }, required: ["x", "y"], additionalProperties: false } },
    properties: { from: { $ref: "#/$defs/point" }, to: { $ref: "#/$defs/point" } },
    required: ["from", "to"],
    additionalProperties: false,
  },
};

const ajv = new Ajv2020({ strict: false, allErrors: true });

/** Asserts `value` satisfies the JSON Schema `schema` (ajv, draft 2020-12), naming every violation. */
export function assertValid(schema: object, value: unknown, what = "value"): void {
  const validate = ajv.compile(schema);
  assert.ok(validate(value), `${what} ${JSON.stringify(value)} violates its schema: ${ajv.errorsText(validate.errors)}`);
}

/** Concatenates the streamed tool-call deltas by `index`, as OpenAI documents the stream. */
export function assembleToolCallDeltas(
  deltas: { index: number; id?: string; type?: string; function?: { name?: string; arguments?: string } }[],
): { id: string; type: string; function: { name: string; arguments: string } }[] {
  const calls: { id: string; type: string; function: { name: string; arguments: string } }[] = [];
  for (const d of deltas) {
    let call = calls[d.index];
    if (!call) {
      assert.ok(d.id && d.type && d.function?.name, `the first delta of call ${d.index} names it: ${JSON.stringify(d)}`);
      call = calls[d.index] = { id: d.id, type: d.type, function: { name: d.function.name, arguments: "" } };
    } else {
      assert.ok(!d.id && !d.function?.name, `later deltas of call ${d.index} carry only argument fragments: ${JSON.stringify(d)}`);
    }
    call.function.arguments += d.function?.arguments ?? "";
  }
  assert.equal(calls.filter(Boolean).length, calls.length, "indices are contiguous from 0");
  return calls;
}

/** The UTF-8 bytes of `s`, as logprobs' `bytes` lists them. */
export const utf8Bytes = (s: string): number[] => [...Buffer.from(s, "utf8")];
