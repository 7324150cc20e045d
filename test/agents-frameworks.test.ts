import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type OpenAICompatibleProvider, createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { AIMessage, type AIMessageChunk, type BaseMessageLike, ToolMessage } from "@langchain/core/messages";
import { ChatOllama } from "@langchain/ollama";
import { ChatOpenAI } from "@langchain/openai";
import { type ModelMessage, type ToolSet, generateObject, generateText, jsonSchema, streamText, tool } from "ai";
import { z } from "zod";
import type { RunningServer } from "../src/server/server.js";
import { AGENT_MODEL, type AgentTool, STORY_CHAT_MODEL, agentCase, goldenCalls, goldenThinking, startAgentServer } from "./helpers/agents.js";

let server: RunningServer;
let chatOpenAI: ChatOpenAI;
let aiSdk: OpenAICompatibleProvider;
before(async () => {
  server = await startAgentServer();
  chatOpenAI = new ChatOpenAI({ model: AGENT_MODEL, temperature: 0, maxTokens: 96, apiKey: "unused", maxRetries: 0, configuration: { baseURL: `${server.url}/v1` } });
  // Shimmy enforces json_schema, so the provider may send the schema itself rather than JSON mode plus a prompt.
  aiSdk = createOpenAICompatible({ name: "shimmy", baseURL: `${server.url}/v1`, supportsStructuredOutputs: true });
});
after(() => server.close());

/** A story's shape as apps declare it with zod: bounded strings, an enum, an array of objects, integers. */
const storySchema = z.object({
  title: z.string().max(24),
  mood: z.enum(["happy", "sad"]),
  characters: z
    .array(z.object({ name: z.string().max(12), age: z.number().int() }))
    .min(1)
    .max(2),
});

/** A golden case's plain messages (every case but after-tool-result has no calls in its history). */
function plainMessages(name: string): { role: "system" | "user"; content: string }[] {
  return agentCase(name).messages.map((m) => {
    assert.ok(m.role === "system" || m.role === "user", `${name} has only system and user messages`);
    return { role: m.role, content: m.content };
  });
}

/** The after-tool-result history in LangChain messages: the assistant's call, then the tool's answer. */
function langChainToolHistory(): BaseMessageLike[] {
  return agentCase("after-tool-result").messages.map((m) => {
    if (m.role === "assistant") return new AIMessage({ content: m.content, tool_calls: (m.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, args: c.function.arguments, type: "tool_call" as const })) });
    if (m.role === "tool") return new ToolMessage({ tool_call_id: m.tool_call_id!, content: m.content });
    return { role: m.role, content: m.content };
  });
}

/** Golden's tools as an AI SDK tool set: the same JSON Schemas, no `execute` (the test inspects the calls). */
function aiSdkTools(tools: AgentTool[]): ToolSet {
  return Object.fromEntries(tools.map((t) => [t.function.name, tool({ description: t.function.description, inputSchema: jsonSchema(t.function.parameters) })]));
}

describe("LangChain ChatOpenAI against /v1", () => {
  for (const name of ["weather-call", "time-call-with-system", "parallel-calls"]) {
    it(`bindTools (${name}) → tool_calls equal to golden's`, async () => {
      const c = agentCase(name);
      const message = await chatOpenAI.bindTools(c.tools).invoke(plainMessages(name));
      assert.deepEqual(
        message.tool_calls?.map((t) => ({ name: t.name, arguments: t.args })),
        goldenCalls(c.text),
      );
    });
  }

  it("bindTools streamed: the concatenated chunks hold golden's two calls", async () => {
    const c = agentCase("parallel-calls");
    let whole: AIMessageChunk | undefined;
    for await (const chunk of await chatOpenAI.bindTools(c.tools).stream(plainMessages("parallel-calls"))) whole = whole ? whole.concat(chunk) : chunk;
    assert.deepEqual(
      whole?.tool_calls?.map((t) => ({ name: t.name, arguments: t.args })),
      goldenCalls(c.text),
    );
  });

  it("a ToolMessage answering the call → golden text", async () => {
    const message = await chatOpenAI.bindTools(agentCase("after-tool-result").tools).invoke(langChainToolHistory());
    assert.equal(message.content, agentCase("after-tool-result").text);
    assert.deepEqual(message.tool_calls, []);
  });

  it("withStructuredOutput(zod) on stories260k-chat → an object the schema accepts", async () => {
    const story = new ChatOpenAI({ model: STORY_CHAT_MODEL, temperature: 0, maxTokens: 200, apiKey: "unused", maxRetries: 0, configuration: { baseURL: `${server.url}/v1` } });
    const value = await story.withStructuredOutput(storySchema).invoke("Once upon a time");
    assert.deepEqual(storySchema.parse(value), value);
  });
});

describe("LangChain ChatOllama against /api", () => {
  for (const name of ["weather-call", "parallel-calls"]) {
    it(`bindTools (${name}) → tool_calls equal to golden's`, async () => {
      const c = agentCase(name);
      const llm = new ChatOllama({ model: AGENT_MODEL, baseUrl: server.url, temperature: 0, repeatPenalty: 1, numPredict: 96 });
      const message = await llm.bindTools(c.tools).invoke(plainMessages(name));
      assert.deepEqual(
        message.tool_calls?.map((t) => ({ name: t.name, arguments: t.args })),
        goldenCalls(c.text),
      );
    });
  }
});

describe("AI SDK (ai + @ai-sdk/openai-compatible) against /v1", () => {
  for (const name of ["weather-call", "add-call", "parallel-calls"]) {
    it(`generateText with tools (${name}) → toolCalls equal to golden's`, async () => {
      const c = agentCase(name);
      const r = await generateText({ model: aiSdk(AGENT_MODEL), messages: plainMessages(name) as ModelMessage[], tools: aiSdkTools(c.tools), temperature: 0, maxOutputTokens: 96, maxRetries: 0 });
      assert.deepEqual(
        r.toolCalls.map((t) => ({ name: t.toolName, arguments: t.input })),
        goldenCalls(c.text),
      );
      assert.equal(r.finishReason, "tool-calls");
    });
  }

  it("streamText with tools → the streamed calls equal golden's", async () => {
    const c = agentCase("parallel-calls");
    let streamError: unknown;
    const r = streamText({ model: aiSdk(AGENT_MODEL), messages: plainMessages("parallel-calls") as ModelMessage[], tools: aiSdkTools(c.tools), temperature: 0, maxOutputTokens: 96, maxRetries: 0, onError: ({ error }) => void (streamError = error) });
    // A failed stream rejects with a generic error; the server's own one is more useful.
    const toolCalls = await Promise.resolve(r.toolCalls).catch((e: unknown) => {
      throw streamError ?? e;
    });
    assert.deepEqual(
      toolCalls.map((t) => ({ name: t.toolName, arguments: t.input })),
      goldenCalls(c.text),
    );
  });

  it("generateText reads reasoning_content as reasoning", async () => {
    const expected = goldenThinking(agentCase("thinking-no-tools").text);
    const r = await generateText({ model: aiSdk(AGENT_MODEL), messages: plainMessages("thinking-no-tools") as ModelMessage[], temperature: 0, maxOutputTokens: 96, maxRetries: 0 });
    assert.equal(r.reasoningText, expected.reasoning);
    assert.equal(r.text, expected.content);
  });

  it("generateObject(zod) on stories260k-chat → an object the schema accepts", async () => {
    const r = await generateObject({ model: aiSdk(STORY_CHAT_MODEL), schema: storySchema, prompt: "Once upon a time", temperature: 0, maxOutputTokens: 200, maxRetries: 0 });
    assert.deepEqual(storySchema.parse(r.object), r.object);
    assert.equal(r.finishReason, "stop");
  });
});
