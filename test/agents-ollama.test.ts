import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type ChatRequest, type ChatResponse, type Logprob, type Message, Ollama, type ToolCall } from "ollama";
import type { RunningServer } from "../src/server/server.js";
import { AGENT_MODEL, type AgentMessage, STORY_CHAT_MODEL, STRUCTURED_SCHEMAS, agentCase, assertValid, goldenCalls, goldenThinking, startAgentServer } from "./helpers/agents.js";

let server: RunningServer;
let ollama: Ollama;
before(async () => {
  server = await startAgentServer();
  ollama = new Ollama({ host: server.url });
});
after(() => server.close());

/** Greedy with Ollama's default repeat penalty (1.1) turned off, bounded. */
const greedy = (n = 96) => ({ temperature: 0, repeat_penalty: 1, num_predict: n });

/** Golden messages on the Ollama wire: calls carry object arguments; a tool result names its tool. */
function wireMessages(messages: AgentMessage[]): Message[] {
  return messages.map((m): Message => {
    if (m.role === "assistant" && m.tool_calls) return { role: "assistant", content: m.content, tool_calls: m.tool_calls.map((c) => ({ function: c.function })) };
    if (m.role === "tool") {
      const call = messages.flatMap((x) => x.tool_calls ?? []).find((c) => c.id === m.tool_call_id);
      return { role: "tool", content: m.content, tool_name: call?.function.name };
    }
    return { role: m.role, content: m.content };
  });
}

/** A greedy request for a golden case, with its tools. */
function caseRequest(name: string, extra: Partial<ChatRequest> = {}): ChatRequest & { stream?: false } {
  const c = agentCase(name);
  return { model: AGENT_MODEL, messages: wireMessages(c.messages), tools: c.tools.length ? c.tools : undefined, options: greedy(), ...extra, stream: false };
}

/** The {name, arguments} of each call (Ollama sends arguments as an object, never a string). */
function calls(toolCalls: ToolCall[] | undefined): { name: string; arguments: unknown }[] {
  return (toolCalls ?? []).map((c) => {
    assert.equal(typeof c.function.arguments, "object", "arguments are an object");
    return { name: c.function.name, arguments: c.function.arguments };
  });
}

/** Streams a request: concatenated content and thinking, every tool call, every logprob entry, the last chunk. */
async function streamed(request: ChatRequest) {
  let content = "";
  let thinking = "";
  const toolCalls: ToolCall[] = [];
  const logprobs: Logprob[] = [];
  let last: ChatResponse | undefined;
  for await (const chunk of await ollama.chat({ ...request, stream: true })) {
    content += chunk.message.content;
    thinking += chunk.message.thinking ?? "";
    toolCalls.push(...(chunk.message.tool_calls ?? []));
    logprobs.push(...(chunk.logprobs ?? []));
    last = chunk;
  }
  assert.ok(last?.done, "the stream ends with a done chunk");
  return { content, thinking, toolCalls, logprobs, last };
}

describe("Ollama tool calling through the ollama SDK (tiny-agent)", () => {
  for (const name of ["weather-call", "time-call-with-system", "add-call", "parallel-calls"]) {
    it(`${name}: message.tool_calls with object arguments equal to golden's`, async () => {
      const r = await ollama.chat(caseRequest(name));
      assert.deepEqual(calls(r.message.tool_calls), goldenCalls(agentCase(name).text));
      assert.equal(r.message.content, "", "only calls: no content");
      assert.equal(r.done_reason, "stop");
    });
  }

  it("after-tool-result: history with the call and a role tool message → golden text", async () => {
    const r = await ollama.chat(caseRequest("after-tool-result"));
    assert.equal(r.message.content, agentCase("after-tool-result").text);
    assert.deepEqual(calls(r.message.tool_calls), []);
  });

  it("no-call-chat: tools offered, 'Hello!' → golden plain text, no calls", async () => {
    const r = await ollama.chat(caseRequest("no-call-chat"));
    assert.equal(r.message.content, agentCase("no-call-chat").text);
    assert.deepEqual(calls(r.message.tool_calls), []);
  });

  it("streamed: the chunks carry the same calls, and no call markup as content", async () => {
    for (const name of ["weather-call", "parallel-calls"]) {
      const s = await streamed(caseRequest(name));
      assert.deepEqual(calls(s.toolCalls), goldenCalls(agentCase(name).text), name);
      assert.equal(s.content, "", name);
    }
  });
});

describe("Ollama structured output (format)", () => {
  for (const [name, schema] of Object.entries(STRUCTURED_SCHEMAS)) {
    it(`format = a JSON schema (${name}) → content that validates`, async () => {
      const r = await ollama.chat({ model: STORY_CHAT_MODEL, messages: [{ role: "user", content: "Once upon a time" }], format: schema, options: greedy(200), stream: false });
      assert.equal(r.done_reason, "stop", "the grammar closes the object before num_predict");
      assertValid(schema, JSON.parse(r.message.content), name);
    });
  }

  it('format "json" → a JSON object whenever the model stops (tiny-agent; seeded samples)', async () => {
    // The tiny model was never trained on JSON mode: under the grammar it often rambles on inside
    // a string until num_predict. Every answer that ends by itself must be a whole JSON object.
    let stopped = 0;
    for (const seed of [5, 6, 7, 8]) {
      const r = await ollama.chat({ model: AGENT_MODEL, messages: [{ role: "user", content: "Hello!" }], format: "json", options: { temperature: 1, seed, num_predict: 200 } });
      assert.equal(r.message.content.trimStart()[0], "{", r.message.content);
      if (r.done_reason !== "stop") continue;
      stopped++;
      const value: unknown = JSON.parse(r.message.content);
      assert.ok(typeof value === "object" && value !== null && !Array.isArray(value), `an object: ${r.message.content}`);
    }
    assert.ok(stopped > 0, "at least one seeded answer ended by itself");
  });
});

describe("Ollama thinking (tiny-agent thinks before arithmetic)", () => {
  const c = agentCase("thinking-no-tools");
  const expected = goldenThinking(c.text);

  it("think true → message.thinking and the answer as content, streamed and not", async () => {
    const r = await ollama.chat(caseRequest("thinking-no-tools", { think: true }));
    assert.equal(r.message.thinking, expected.reasoning);
    assert.equal(r.message.content, expected.content);
    const s = await streamed(caseRequest("thinking-no-tools", { think: true }));
    assert.equal(s.thinking, expected.reasoning);
    assert.equal(s.content, expected.content);
  });

  // Ollama parses thinking only when asked (think true); otherwise the model's text is content as written.
  it("think false → no thinking field and the answer alone (reasoning the model writes anyway is dropped); unset → separated", async () => {
    const r = await ollama.chat(caseRequest("thinking-no-tools", { think: false }));
    assert.ok(!r.message.thinking, `no thinking: ${JSON.stringify(r.message.thinking)}`);
    assert.equal(r.message.content, expected.content);
    const unset = await ollama.chat(caseRequest("thinking-no-tools"));
    assert.equal(unset.message.thinking, expected.reasoning);
    assert.equal(unset.message.content, expected.content);
  });
});

describe("Ollama logprobs", () => {
  it("logprobs with top_logprobs 3, greedy: tokens spell the content; the top entry is the chosen token; streamed alike", async () => {
    const request = caseRequest("no-tools-plain", { logprobs: true, top_logprobs: 3 });
    const r = await ollama.chat(request);
    assert.equal(r.message.content, agentCase("no-tools-plain").text);
    const entries = r.logprobs!;
    assert.equal(entries.map((e) => e.token).join(""), r.message.content);
    for (const e of entries) {
      assert.ok(e.logprob <= 0, `${e.token}: ${e.logprob}`);
      assert.equal(e.top_logprobs!.length, 3);
      assert.equal(e.top_logprobs![0]!.token, e.token, "greedy picks the most likely token");
      assert.equal(e.top_logprobs![0]!.logprob, e.logprob);
      for (let i = 1; i < 3; i++) assert.ok(e.top_logprobs![i]!.logprob <= e.top_logprobs![i - 1]!.logprob, "most likely first");
    }
    const s = await streamed(request);
    assert.deepEqual(s.logprobs, entries);
  });
});
