import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
  ChatCompletionMessageToolCall,
  ChatCompletionTokenLogprob,
} from "openai/resources/chat/completions";
import type { RunningServer } from "../src/server/server.js";
import {
  AGENT_MODEL,
  type AgentMessage,
  STORY_CHAT_MODEL,
  STRUCTURED_SCHEMAS,
  agentCase,
  agentTool,
  assembleToolCallDeltas,
  assertValid,
  goldenCalls,
  goldenThinking,
  startAgentServer,
  utf8Bytes,
} from "./helpers/agents.js";
import { golden } from "./helpers/server.js";

let server: RunningServer;
let client: OpenAI;
before(async () => {
  server = await startAgentServer();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
after(() => server.close());

/** Golden messages on the OpenAI wire: a call's arguments travel as a JSON string. */
function wireMessages(messages: AgentMessage[]): ChatCompletionMessageParam[] {
  return messages.map((m): ChatCompletionMessageParam => {
    if (m.role === "tool") return { role: "tool", tool_call_id: m.tool_call_id!, content: m.content };
    if (m.role === "assistant") {
      const calls = m.tool_calls?.map((c) => ({ id: c.id, type: "function" as const, function: { name: c.function.name, arguments: JSON.stringify(c.function.arguments) } }));
      return calls ? { role: "assistant", content: m.content || null, tool_calls: calls } : { role: "assistant", content: m.content };
    }
    return { role: m.role, content: m.content };
  });
}

/** A greedy, bounded request for a golden case, with its tools. */
function caseRequest(name: string, extra: Partial<ChatCompletionCreateParamsNonStreaming> = {}): ChatCompletionCreateParamsNonStreaming {
  const c = agentCase(name);
  return { model: AGENT_MODEL, messages: wireMessages(c.messages), tools: c.tools.length ? c.tools : undefined, temperature: 0, max_tokens: 96, ...extra };
}

/** The function calls of a non-streamed answer (every call must be one). */
function functionCalls(r: ChatCompletion): { id: string; function: { name: string; arguments: string } }[] {
  const message = r.choices[0]!.message;
  assert.ok(message.tool_calls?.length, `tool calls expected, got content ${JSON.stringify(message.content)}`);
  return message.tool_calls.map((call: ChatCompletionMessageToolCall) => {
    assert.ok(call.type === "function", `a function call: ${JSON.stringify(call)}`);
    return call;
  });
}

/** The calls of a non-streamed answer as {name, parsed arguments}, after checking each call's shape. */
function parsedCalls(r: ChatCompletion): { name: string; arguments: unknown }[] {
  return functionCalls(r).map((call) => {
    assert.ok(typeof call.id === "string" && call.id.length > 0, "each call has an id");
    assert.equal(typeof call.function.arguments, "string", "arguments travel as a JSON string");
    return { name: call.function.name, arguments: JSON.parse(call.function.arguments) };
  });
}

/** Streams `request` through the SDK: the concatenated content, reasoning and tool calls, and the last finish reason. */
async function streamed(request: ChatCompletionCreateParamsNonStreaming) {
  const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
  const deltas: NonNullable<ChatCompletionChunk.Choice.Delta["tool_calls"]> = [];
  let content = "";
  let reasoning = "";
  let finish: string | null = null;
  const logprobs: ChatCompletionTokenLogprob[] = [];
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    content += choice.delta.content ?? "";
    reasoning += (choice.delta as { reasoning_content?: string | null }).reasoning_content ?? "";
    deltas.push(...(choice.delta.tool_calls ?? []));
    logprobs.push(...(choice.logprobs?.content ?? []));
    finish = choice.finish_reason ?? finish;
  }
  return { content, reasoning, finish, calls: assembleToolCallDeltas(deltas), logprobs };
}

describe("OpenAI tool calling through the openai SDK (tiny-agent)", () => {
  for (const [name, toolChoice] of [["weather-call", "auto"], ["time-call-with-system", undefined], ["add-call", "auto"]] as const) {
    it(`${name}: tool_choice ${toolChoice ?? "omitted"} → golden's call, content null, finish_reason tool_calls`, async () => {
      const r = await client.chat.completions.create(caseRequest(name, { tool_choice: toolChoice }));
      assert.deepEqual(parsedCalls(r), goldenCalls(agentCase(name).text));
      assert.equal(r.choices[0]!.message.content, null, "only calls: no content");
      assert.equal(r.choices[0]!.finish_reason, "tool_calls");
    });
  }

  it("parallel-calls: two calls at indices 0 and 1, distinct ids", async () => {
    const r = await client.chat.completions.create(caseRequest("parallel-calls"));
    assert.deepEqual(parsedCalls(r), goldenCalls(agentCase("parallel-calls").text));
    const ids = functionCalls(r).map((c) => c.id);
    assert.equal(new Set(ids).size, 2, "each call has its own id");
  });

  it("parallel_tool_calls false → only the first call", async () => {
    const r = await client.chat.completions.create(caseRequest("parallel-calls", { parallel_tool_calls: false }));
    assert.deepEqual(parsedCalls(r), goldenCalls(agentCase("parallel-calls").text).slice(0, 1));
    assert.equal(r.choices[0]!.finish_reason, "tool_calls");
  });

  it("after-tool-result: history with the assistant's call and the tool's result → golden text", async () => {
    const c = agentCase("after-tool-result");
    const r = await client.chat.completions.create(caseRequest("after-tool-result"));
    assert.equal(r.choices[0]!.message.content, c.text);
    assert.ok(!r.choices[0]!.message.tool_calls?.length);
    assert.equal(r.choices[0]!.finish_reason, "stop");
  });

  it("no-call-chat: tools offered, 'Hello!' → golden plain text, no calls", async () => {
    const r = await client.chat.completions.create(caseRequest("no-call-chat"));
    assert.equal(r.choices[0]!.message.content, agentCase("no-call-chat").text);
    assert.ok(!r.choices[0]!.message.tool_calls?.length);
    assert.equal(r.choices[0]!.finish_reason, "stop");
  });

  it("tool_choice none on a question a tool answers: a message, no call", async () => {
    const r = await client.chat.completions.create(caseRequest("weather-call", { tool_choice: "none", max_tokens: 48 }));
    const choice = r.choices[0]!;
    assert.ok(!choice.message.tool_calls?.length, JSON.stringify(choice.message.tool_calls));
    assert.notEqual(choice.finish_reason, "tool_calls");
    assert.equal(typeof choice.message.content, "string");
  });

  it("tool_choice required on 'Hello!' → a call to an offered tool whose arguments satisfy its parameters", async () => {
    const c = agentCase("no-call-chat");
    const r = await client.chat.completions.create(caseRequest("no-call-chat", { tool_choice: "required" }));
    const calls = parsedCalls(r);
    for (const call of calls) {
      const tool = c.tools.find((t) => t.function.name === call.name);
      assert.ok(tool, `${call.name} is one of the offered tools`);
      assertValid(tool.function.parameters, call.arguments, `${call.name} arguments`);
    }
    assert.equal(r.choices[0]!.finish_reason, "tool_calls");
  });

  it("a named tool_choice on 'Hello!' → exactly that function, arguments valid", async () => {
    const r = await client.chat.completions.create(caseRequest("no-call-chat", { tool_choice: { type: "function", function: { name: "get_stock_price" } } }));
    const calls = parsedCalls(r);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.name, "get_stock_price");
    assertValid(agentTool("get_stock_price").function.parameters, calls[0]!.arguments, "get_stock_price arguments");
  });

  it("refuses, with a 400 naming the parameter, a tool_choice for a function not offered and an invalid schema", async () => {
    const bad: [RegExp, Partial<ChatCompletionCreateParamsNonStreaming>][] = [
      [/^tool_choice/, { tool_choice: { type: "function", function: { name: "no_such_tool" } } }],
      [/^response_format/, { tools: undefined, response_format: { type: "json_schema", json_schema: { name: "broken", strict: true, schema: { type: "no-such-type" } } } }],
    ];
    for (const [param, extra] of bad) {
      const error = await client.chat.completions.create(caseRequest("weather-call", extra)).then(
        () => assert.fail(`accepted ${JSON.stringify(extra)}`),
        (e: unknown) => e,
      );
      assert.ok(error instanceof OpenAI.BadRequestError, String(error));
      assert.equal(error.type, "invalid_request_error");
      assert.match(String(error.param), param);
    }
  });

  it("streamed: deltas keyed by index reassemble to the non-streamed calls", async () => {
    const requests: [string, ChatCompletionCreateParamsNonStreaming][] = [
      ["weather-call", caseRequest("weather-call")],
      ["parallel-calls", caseRequest("parallel-calls")],
      ["required", caseRequest("no-call-chat", { tool_choice: "required" })],
      ["named", caseRequest("no-call-chat", { tool_choice: { type: "function", function: { name: "get_stock_price" } } })],
    ];
    for (const [what, request] of requests) {
      const whole = functionCalls(await client.chat.completions.create(request));
      const s = await streamed(request);
      assert.equal(s.finish, "tool_calls", what);
      assert.equal(s.content, "", `${what}: no content beside the calls`);
      assert.equal(s.calls.length, whole.length, what);
      s.calls.forEach((call, i) => {
        assert.equal(call.type, "function", what);
        assert.ok(call.id.length > 0, `${what}: call ${i} has an id`);
        assert.equal(call.function.name, whole[i]!.function.name, what);
        assert.equal(call.function.arguments, whole[i]!.function.arguments, `${what}: the fragments concatenate to the same JSON`);
        JSON.parse(call.function.arguments);
      });
    }
  });
});

describe("OpenAI tool calling on a template that knows no tools (generic fallback, stories260k-chat)", () => {
  // stories260K has a 512-token context and a 512-piece vocabulary: the smallest golden tool keeps the described tools inside it.
  const weather = agentTool("get_time");

  it("required: a JSON call the grammar enforces, arguments valid; streamed the same", async () => {
    const request: ChatCompletionCreateParamsNonStreaming = { model: STORY_CHAT_MODEL, messages: [{ role: "user", content: "Once upon a time" }], tools: [weather], tool_choice: "required", parallel_tool_calls: false, temperature: 0, max_tokens: 120 };
    const r = await client.chat.completions.create(request);
    const [call] = functionCalls(r);
    assert.equal(call!.function.name, "get_time");
    assertValid(weather.function.parameters, JSON.parse(call!.function.arguments), "arguments");
    assert.equal(r.choices[0]!.finish_reason, "tool_calls");
    const s = await streamed(request);
    assert.equal(s.calls[0]!.function.arguments, call!.function.arguments);
  });

  it("auto: the answer is a call or text, never raw JSON in content", async () => {
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.create({ model: STORY_CHAT_MODEL, messages: [{ role: "user", content: "Tom and Sue" }], tools: [weather], temperature: 1, seed, max_tokens: 120 });
      const m = r.choices[0]!.message;
      if (m.tool_calls?.length) assertValid(weather.function.parameters, JSON.parse((m.tool_calls[0] as { function: { arguments: string } }).function.arguments), "arguments");
      else if (r.choices[0]!.finish_reason === "stop") assert.ok(!m.content!.trimStart().startsWith("{\"response\""), m.content!);
    }
  });
});

describe("OpenAI reasoning (tiny-agent thinks before arithmetic)", () => {
  const expected = goldenThinking(agentCase("thinking-no-tools").text);

  it("message.reasoning_content holds the thinking, content the answer", async () => {
    const r = await client.chat.completions.create(caseRequest("thinking-no-tools"));
    const message = r.choices[0]!.message as ChatCompletion.Choice["message"] & { reasoning_content?: string };
    assert.equal(message.reasoning_content, expected.reasoning);
    assert.equal(message.content, expected.content);
    assert.equal(r.choices[0]!.finish_reason, "stop");
  });

  it("streamed: delta.reasoning_content then delta.content", async () => {
    const s = await streamed(caseRequest("thinking-no-tools"));
    assert.equal(s.reasoning, expected.reasoning);
    assert.equal(s.content, expected.content);
    assert.deepEqual(s.calls, []);
  });
});

describe("OpenAI structured output (stories260k-chat, grammar-enforced)", () => {
  const storyRequest = (extra: Partial<ChatCompletionCreateParamsNonStreaming>): ChatCompletionCreateParamsNonStreaming => ({
    model: STORY_CHAT_MODEL,
    messages: [{ role: "user", content: "Once upon a time" }],
    temperature: 0,
    max_tokens: 200,
    ...extra,
  });

  for (const [name, schema] of Object.entries(STRUCTURED_SCHEMAS)) {
    it(`json_schema strict (${name}): the content parses and validates, streamed and not`, async () => {
      const request = storyRequest({ response_format: { type: "json_schema", json_schema: { name: name.replace(/\W/g, "_"), strict: true, schema } } });
      const r = await client.chat.completions.create(request);
      assert.equal(r.choices[0]!.finish_reason, "stop", "the grammar closes the object before max_tokens");
      assertValid(schema, JSON.parse(r.choices[0]!.message.content!), name);
      const s = await streamed(request);
      assertValid(schema, JSON.parse(s.content), `${name} (streamed)`);
      assert.equal(s.content, r.choices[0]!.message.content, "greedy: the same text streamed");
    });
  }

  it("json_object → a JSON object whenever the model stops (tiny-agent; seeded samples)", async () => {
    // The tiny model was never trained on JSON mode: under the grammar it often rambles on inside
    // a string until max_tokens. Every answer that ends by itself must be a whole JSON object.
    let stopped = 0;
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const r = await client.chat.completions.create({ model: AGENT_MODEL, messages: [{ role: "user", content: "Hello!" }], temperature: 1, seed, max_tokens: 200, response_format: { type: "json_object" } });
      const content = r.choices[0]!.message.content!;
      assert.equal(content.trimStart()[0], "{", content);
      if (r.choices[0]!.finish_reason !== "stop") continue;
      stopped++;
      const value: unknown = JSON.parse(content);
      assert.ok(typeof value === "object" && value !== null && !Array.isArray(value), `an object: ${content}`);
    }
    assert.ok(stopped > 0, "at least one seeded answer ended by itself");
  });
});

describe("OpenAI logprobs", () => {
  it("chat, top_logprobs 3, greedy: tokens spell the content; the top entry is the chosen token; bytes are UTF-8", async () => {
    const request = caseRequest("no-tools-plain", { logprobs: true, top_logprobs: 3 });
    const r = await client.chat.completions.create(request);
    const content = r.choices[0]!.message.content!;
    assert.equal(content, agentCase("no-tools-plain").text);
    const entries = r.choices[0]!.logprobs!.content!;
    assert.equal(entries.map((e) => e.token).join(""), content);
    assert.equal(entries.length, r.usage!.completion_tokens);
    for (const e of entries) {
      assert.ok(e.logprob <= 0, `${e.token}: ${e.logprob}`);
      assert.deepEqual(e.bytes, utf8Bytes(e.token));
      assert.equal(e.top_logprobs.length, 3);
      assert.equal(e.top_logprobs[0]!.token, e.token, "greedy picks the most likely token");
      assert.equal(e.top_logprobs[0]!.logprob, e.logprob);
      for (const [i, t] of e.top_logprobs.entries()) {
        assert.deepEqual(t.bytes, utf8Bytes(t.token));
        if (i > 0) assert.ok(t.logprob <= e.top_logprobs[i - 1]!.logprob, "most likely first");
      }
    }
    const s = await streamed(request);
    assert.deepEqual(s.logprobs, entries, "streamed chunks carry the same entries");
  });

  it("chat: the first token's alternatives carry the reference probabilities", async () => {
    const r = await client.chat.completions.create({ model: STORY_CHAT_MODEL, messages: [{ role: "user", content: "Once upon a time" }], temperature: 0, max_tokens: 2, logprobs: true, top_logprobs: 5 });
    const first = r.choices[0]!.logprobs!.content![0]!;
    const expected = golden.nextTokenTop5.top.slice(0, 2);
    assert.deepEqual(first.top_logprobs.slice(0, 2).map((t) => t.token), expected.map((t) => t.piece.replace(/\u2581/g, " ")));
    first.top_logprobs.slice(0, 2).forEach((t, i) => assert.ok(Math.abs(Math.exp(t.logprob) - expected[i]!.p) < 2e-3, `${t.token}: p ${Math.exp(t.logprob)} vs ${expected[i]!.p}`));
  });

  it("completions, legacy logprobs: 5 → tokens, token_logprobs, top_logprobs maps, text_offset", async () => {
    const r = await client.completions.create({ model: "stories260k", prompt: "Once upon a time", max_tokens: 6, temperature: 0, logprobs: 5 });
    const choice = r.choices[0]!;
    const lp = choice.logprobs!;
    assert.equal(lp.tokens!.join(""), choice.text);
    assert.equal(lp.tokens!.length, 6);
    assert.equal(lp.token_logprobs!.length, 6);
    for (const [i, token] of lp.tokens!.entries()) {
      const top = lp.top_logprobs![i]!;
      assert.equal(Object.keys(top).length, 5);
      assert.ok(lp.token_logprobs![i]! <= 0);
      assert.equal(Math.max(...Object.values(top)), lp.token_logprobs![i], "greedy: the chosen token is the most likely");
      assert.equal(top[token], lp.token_logprobs![i]);
      if (i > 0) assert.equal(lp.text_offset![i]! - lp.text_offset![i - 1]!, lp.tokens![i - 1]!.length, "offsets advance by each token's text");
    }
    assert.ok(Math.abs(Math.exp(lp.token_logprobs![0]!) - golden.nextTokenTop5.top[0]!.p) < 2e-3);
  });
});

describe("OpenAI n > 1", () => {
  const request = { model: STORY_CHAT_MODEL, messages: [{ role: "user" as const, content: "Once upon a time" }], max_tokens: 16, temperature: 1, seed: 42, n: 3 };

  it("n=3 with a seed: three choices 0..2, usage summed, reproducible, streamed alike", async () => {
    const r = await client.chat.completions.create(request);
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
    for (const c of r.choices) assert.equal(c.finish_reason, "length", "stories260K rarely ends a story in 16 tokens");
    assert.equal(r.usage!.completion_tokens, 3 * request.max_tokens, "usage counts every choice's tokens");
    const single = await client.chat.completions.create({ ...request, n: 1 });
    assert.equal(r.usage!.prompt_tokens, single.usage!.prompt_tokens, "the prompt counts once");
    const texts = r.choices.map((c) => c.message.content);
    assert.ok(new Set(texts).size > 1, `independent samples: ${JSON.stringify(texts)}`);
    const again = await client.chat.completions.create(request);
    assert.deepEqual(again.choices.map((c) => c.message.content), texts, "the seed makes it reproducible");
    const byIndex = ["", "", ""];
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) {
      for (const c of chunk.choices) byIndex[c.index] += c.delta.content ?? "";
    }
    assert.deepEqual(byIndex, texts);
  });
});
