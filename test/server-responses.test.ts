import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createOpenAI } from "@ai-sdk/openai";
import { type ToolSet, generateText, jsonSchema, streamText, tool } from "ai";
import OpenAI from "openai";
import type { FunctionTool, Response, ResponseCreateParamsNonStreaming, ResponseFunctionToolCall, ResponseInputItem, ResponseStreamEvent } from "openai/resources/responses/responses";
import type { RunningServer } from "../src/server/server.js";
import { AGENT_MODEL, type AgentTool, STORY_CHAT_MODEL, STRUCTURED_SCHEMAS, agentCase, assertValid, goldenCalls, goldenThinking, startAgentServer } from "./helpers/agents.js";
import { postJson } from "./helpers/server.js";

let server: RunningServer;
let client: OpenAI;
before(async () => {
  server = await startAgentServer();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
after(() => server.close());

const STORY_PROMPT = "Once upon a time";

/** The chat route's greedy answer for the same conversation (the reference the Responses route must match). */
async function chatGreedy(model: string, messages: OpenAI.Chat.ChatCompletionMessageParam[], maxTokens: number) {
  const r = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: maxTokens });
  return { text: r.choices[0]!.message.content!, usage: r.usage!, finish: r.choices[0]!.finish_reason };
}

/** Golden's chat-completions tools in the Responses API's flat shape. */
const responsesTools = (tools: AgentTool[]): FunctionTool[] =>
  tools.map((t) => ({ type: "function", name: t.function.name, description: t.function.description, parameters: t.function.parameters, strict: true }));

/** A greedy Responses request for a golden case whose messages are plain (no tool history). */
function caseRequest(name: string, extra: Partial<ResponseCreateParamsNonStreaming> = {}): ResponseCreateParamsNonStreaming {
  const c = agentCase(name);
  return {
    model: AGENT_MODEL,
    input: c.messages.map((m) => ({ role: m.role as "user" | "system", content: m.content })),
    tools: c.tools.length ? responsesTools(c.tools) : undefined,
    temperature: 0,
    max_output_tokens: 96,
    ...extra,
  };
}

const functionCalls = (r: Response): ResponseFunctionToolCall[] => r.output.filter((o): o is ResponseFunctionToolCall => o.type === "function_call");

/** Streams a request: every event, checked for increasing sequence numbers; the closing response. */
async function streamed(request: ResponseCreateParamsNonStreaming): Promise<{ events: ResponseStreamEvent[]; final: Response }> {
  const events: ResponseStreamEvent[] = [];
  for await (const event of await client.responses.create({ ...request, stream: true })) events.push(event);
  events.forEach((e, i) => assert.equal(e.sequence_number, i, `event ${i} (${e.type}) has sequence_number ${i}`));
  const last = events[events.length - 1]!;
  assert.ok(last.type === "response.completed" || last.type === "response.incomplete", `the stream ends with the response: ${last.type}`);
  return { events, final: last.response };
}

const ofType = <T extends ResponseStreamEvent["type"]>(events: ResponseStreamEvent[], type: T) => events.filter((e): e is Extract<ResponseStreamEvent, { type: T }> => e.type === type);

describe("Responses API through the openai SDK (stories260k-chat, greedy)", () => {
  it("a string input: the chat route's greedy text, real usage, status completed or incomplete by finish", async () => {
    const reference = await chatGreedy(STORY_CHAT_MODEL, [{ role: "user", content: STORY_PROMPT }], 24);
    const r = await client.responses.create({ model: STORY_CHAT_MODEL, input: STORY_PROMPT, temperature: 0, max_output_tokens: 24 });
    assert.equal(r.object, "response");
    assert.match(r.id, /^resp_/);
    assert.equal(r.output_text, reference.text);
    assert.equal(r.output.length, 1);
    const message = r.output[0]!;
    assert.ok(message.type === "message" && message.role === "assistant", JSON.stringify(message));
    assert.match(message.id, /^msg_/);
    assert.deepEqual(message.content, [{ type: "output_text", text: reference.text, annotations: [] }]);
    assert.equal(r.usage!.input_tokens, reference.usage.prompt_tokens);
    assert.equal(r.usage!.output_tokens, reference.usage.completion_tokens);
    assert.equal(r.usage!.total_tokens, r.usage!.input_tokens + r.usage!.output_tokens);
    assert.equal(r.usage!.output_tokens_details.reasoning_tokens, 0);
    assert.equal(r.status, reference.finish === "length" ? "incomplete" : "completed");
  });

  it("max_output_tokens cuts the answer: status incomplete, reason max_output_tokens, message incomplete", async () => {
    const r = await client.responses.create({ model: STORY_CHAT_MODEL, input: STORY_PROMPT, temperature: 0, max_output_tokens: 3 });
    assert.equal(r.status, "incomplete");
    assert.deepEqual(r.incomplete_details, { reason: "max_output_tokens" });
    assert.equal(r.usage!.output_tokens, 3);
    assert.equal(r.output[0]!.type === "message" && r.output[0]!.status, "incomplete");
  });

  it("streamed: deltas concatenate to the same text; the events are complete and ordered", async () => {
    const request: ResponseCreateParamsNonStreaming = { model: STORY_CHAT_MODEL, input: STORY_PROMPT, temperature: 0, max_output_tokens: 24 };
    const whole = await client.responses.create(request);
    const { events, final } = await streamed(request);
    const types = events.map((e) => e.type);
    const deltas = ofType(events, "response.output_text.delta");
    assert.ok(deltas.length > 1, "the text arrives in pieces");
    assert.deepEqual(types, [
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      ...deltas.map(() => "response.output_text.delta"),
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      whole.status === "incomplete" ? "response.incomplete" : "response.completed",
    ]);
    const text = deltas.map((d) => d.delta).join("");
    assert.equal(text, whole.output_text);
    assert.equal(ofType(events, "response.output_text.done")[0]!.text, text);
    const itemId = ofType(events, "response.output_item.added")[0]!.item.id;
    for (const d of deltas) assert.deepEqual([d.item_id, d.output_index, d.content_index], [itemId, 0, 0]);
    const created = ofType(events, "response.created")[0]!.response;
    assert.equal(created.status, "in_progress");
    assert.equal(final.id, created.id, "one response id throughout");
    assert.deepEqual(final.output, [ofType(events, "response.output_item.done")[0]!.item], "the closing response holds the items as streamed");
    assert.equal(final.output_text, text);
    // Cached tokens differ (the second run reuses the first's prompt); the counts do not.
    assert.deepEqual([final.usage!.input_tokens, final.usage!.output_tokens], [whole.usage!.input_tokens, whole.usage!.output_tokens]);
  });

  it("instructions come first, as a system message", async () => {
    const [system, user] = [{ role: "system" as const, content: "A short story." }, { role: "user" as const, content: STORY_PROMPT }];
    const reference = await chatGreedy(STORY_CHAT_MODEL, [system, user], 16);
    const withoutSystem = await chatGreedy(STORY_CHAT_MODEL, [user], 16);
    const r = await client.responses.create({ model: STORY_CHAT_MODEL, instructions: system.content, input: [user], temperature: 0, max_output_tokens: 16 });
    assert.equal(r.output_text, reference.text);
    assert.equal(r.usage!.input_tokens, reference.usage.prompt_tokens);
    assert.ok(r.usage!.input_tokens > withoutSystem.usage.prompt_tokens, "the instructions are part of the prompt");
    assert.equal(r.instructions, system.content);
  });

  it("text.format json_schema: the output text parses and validates", async () => {
    const schema = STRUCTURED_SCHEMAS.nested!;
    const r = await client.responses.create({ model: STORY_CHAT_MODEL, input: STORY_PROMPT, temperature: 0, max_output_tokens: 200, text: { format: { type: "json_schema", name: "nested", schema, strict: true } } });
    assert.equal(r.status, "completed", "the grammar closes the object before max_output_tokens");
    assertValid(schema, JSON.parse(r.output_text), "output_text");
  });

  it("include message.output_text.logprobs: one entry per sampled token, spelling the text", async () => {
    const r = await client.responses.create({ model: STORY_CHAT_MODEL, input: STORY_PROMPT, temperature: 0, max_output_tokens: 6, include: ["message.output_text.logprobs"], top_logprobs: 2 });
    const part = r.output[0]!.type === "message" ? r.output[0]!.content[0]! : assert.fail("a message");
    assert.ok(part.type === "output_text" && part.logprobs);
    assert.equal(part.logprobs.map((l) => l.token).join(""), part.text);
    assert.equal(part.logprobs.length, 6);
    for (const l of part.logprobs) {
      assert.equal(l.top_logprobs.length, 2);
      assert.equal(l.top_logprobs[0]!.token, l.token, "greedy picks the most likely token");
    }
  });
});

describe("Responses API tool calling and reasoning (tiny-agent)", () => {
  for (const name of ["weather-call", "parallel-calls"]) {
    it(`${name}, tool_choice auto → function_call items equal to golden's calls`, async () => {
      const r = await client.responses.create(caseRequest(name, { tool_choice: "auto" }));
      const calls = functionCalls(r);
      assert.deepEqual(
        calls.map((c) => ({ name: c.name, arguments: JSON.parse(c.arguments) })),
        goldenCalls(agentCase(name).text),
      );
      assert.equal(r.output.length, calls.length, "only calls: no message item");
      for (const c of calls) {
        assert.match(c.id!, /^fc_/);
        assert.ok(c.call_id.length > 0);
        assert.equal(c.status, "completed");
      }
      assert.equal(new Set(calls.map((c) => c.call_id)).size, calls.length, "each call has its own call_id");
      assert.equal(r.status, "completed");
    });
  }

  it("function_call and function_call_output items in the input → golden's answer", async () => {
    const c = agentCase("after-tool-result");
    const [user, assistant, toolResult] = c.messages;
    const call = assistant!.tool_calls![0]!;
    const input: ResponseInputItem[] = [
      { role: "user", content: user!.content },
      { type: "function_call", call_id: call.id, name: call.function.name, arguments: JSON.stringify(call.function.arguments) },
      { type: "function_call_output", call_id: toolResult!.tool_call_id!, output: toolResult!.content },
    ];
    const r = await client.responses.create({ model: AGENT_MODEL, input, tools: responsesTools(c.tools), temperature: 0, max_output_tokens: 96 });
    assert.equal(r.output_text, c.text);
    assert.deepEqual(functionCalls(r), []);
  });

  it("tool_choice required on 'Hello!' → a call whose arguments satisfy its tool's parameters", async () => {
    const c = agentCase("no-call-chat");
    const calls = functionCalls(await client.responses.create(caseRequest("no-call-chat", { tool_choice: "required" })));
    assert.ok(calls.length > 0, "at least one call");
    for (const call of calls) {
      const t = c.tools.find((x) => x.function.name === call.name);
      assert.ok(t, `${call.name} is an offered tool`);
      assertValid(t.function.parameters, JSON.parse(call.arguments), `${call.name} arguments`);
    }
  });

  it("streamed calls: item added with name and call_id, argument deltas concatenate to .done and to the non-streamed call", async () => {
    const request = caseRequest("parallel-calls");
    const whole = functionCalls(await client.responses.create(request));
    const { events, final } = await streamed(request);
    const added = ofType(events, "response.output_item.added").map((e) => e.item as ResponseFunctionToolCall);
    assert.deepEqual(added.map((a) => [a.type, a.name, a.status]), whole.map((w) => ["function_call", w.name, "in_progress"]));
    const dones = ofType(events, "response.function_call_arguments.done");
    assert.equal(dones.length, whole.length);
    dones.forEach((done, i) => {
      const deltas = ofType(events, "response.function_call_arguments.delta").filter((d) => d.item_id === done.item_id);
      assert.equal(deltas.map((d) => d.delta).join(""), done.arguments);
      assert.equal(done.arguments, whole[i]!.arguments);
      assert.equal(done.name, whole[i]!.name);
      assert.equal(done.item_id, added[i]!.id);
      assert.equal(done.output_index, i);
    });
    assert.deepEqual(
      functionCalls(final).map((c) => [c.id, c.call_id, c.arguments]),
      added.map((a, i) => [a.id, a.call_id, dones[i]!.arguments]),
    );
  });

  describe("reasoning (thinking-no-tools)", () => {
    const expected = goldenThinking(agentCase("thinking-no-tools").text);

    it("a reasoning item before the message: reasoning_text content by default, the summary when one is asked for", async () => {
      const plain = await client.responses.create(caseRequest("thinking-no-tools"));
      assert.deepEqual(plain.output.map((o) => o.type), ["reasoning", "message"]);
      const item = plain.output[0]!.type === "reasoning" ? plain.output[0]! : assert.fail("reasoning first");
      assert.match(item.id, /^rs_/);
      assert.deepEqual(item.summary, []);
      assert.deepEqual(item.content, [{ type: "reasoning_text", text: expected.reasoning }]);
      assert.equal(plain.output_text, expected.content);
      const summarized = await client.responses.create(caseRequest("thinking-no-tools", { reasoning: { effort: "low", summary: "auto" } }));
      const withSummary = summarized.output[0]!.type === "reasoning" ? summarized.output[0]! : assert.fail("reasoning first");
      assert.deepEqual(withSummary.summary, [{ type: "summary_text", text: expected.reasoning }]);
      assert.equal(summarized.output_text, expected.content);
    });

    it("streamed summary: reasoning_summary_text deltas, then the message's text", async () => {
      const { events, final } = await streamed(caseRequest("thinking-no-tools", { reasoning: { summary: "detailed" } }));
      assert.equal(ofType(events, "response.reasoning_summary_text.delta").map((d) => d.delta).join(""), expected.reasoning);
      assert.equal(ofType(events, "response.reasoning_summary_text.done")[0]!.text, expected.reasoning);
      assert.equal(ofType(events, "response.output_text.delta").map((d) => d.delta).join(""), expected.content);
      assert.deepEqual(ofType(events, "response.output_item.added").map((e) => [e.item.type, e.output_index]), [["reasoning", 0], ["message", 1]]);
      assert.equal(final.output_text, expected.content);
    });
  });
});

describe("AI SDK @ai-sdk/openai default model (the Responses API)", () => {
  const model = (id: string) => createOpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused" })(id);

  it("generateText and streamText → the chat route's greedy text", async () => {
    const reference = await chatGreedy(STORY_CHAT_MODEL, [{ role: "user", content: STORY_PROMPT }], 24);
    const r = await generateText({ model: model(STORY_CHAT_MODEL), prompt: STORY_PROMPT, temperature: 0, maxOutputTokens: 24, maxRetries: 0 });
    assert.equal(r.text, reference.text);
    assert.equal(r.usage.inputTokens, reference.usage.prompt_tokens);
    assert.equal(r.usage.outputTokens, reference.usage.completion_tokens);
    let streamError: unknown;
    const s = streamText({ model: model(STORY_CHAT_MODEL), prompt: STORY_PROMPT, temperature: 0, maxOutputTokens: 24, maxRetries: 0, onError: ({ error }) => void (streamError = error) });
    const text = await Promise.resolve(s.text).catch((e: unknown) => {
      throw streamError ?? e;
    });
    assert.equal(text, reference.text);
  });

  it("generateText with tools → golden's calls", async () => {
    const c = agentCase("parallel-calls");
    const tools: ToolSet = Object.fromEntries(c.tools.map((t) => [t.function.name, tool({ description: t.function.description, inputSchema: jsonSchema(t.function.parameters) })]));
    const r = await generateText({ model: model(AGENT_MODEL), prompt: c.messages[0]!.content, tools, temperature: 0, maxOutputTokens: 96, maxRetries: 0 });
    assert.deepEqual(
      r.toolCalls.map((t) => ({ name: t.toolName, arguments: t.input })),
      goldenCalls(c.text),
    );
    assert.equal(r.finishReason, "tool-calls");
  });

  it("a second turn: refused while the SDK sends item references (its store default), answered with store: false", async () => {
    const first = await generateText({ model: model(AGENT_MODEL), prompt: "Who are you?", temperature: 0, maxOutputTokens: 32, maxRetries: 0 });
    assert.equal(first.text, agentCase("no-tools-plain").text);
    const messages = [{ role: "user" as const, content: "Who are you?" }, ...first.response.messages, { role: "user" as const, content: "Hello!" }];
    await assert.rejects(generateText({ model: model(AGENT_MODEL), messages, temperature: 0, maxOutputTokens: 32, maxRetries: 0 }), /item_reference.*stateless/);
    const second = await generateText({ model: model(AGENT_MODEL), messages, temperature: 0, maxOutputTokens: 32, maxRetries: 0, providerOptions: { openai: { store: false } } });
    assert.ok(second.text.length > 0);
  });
});

describe("Responses API errors (OpenAI's envelope)", () => {
  const url = () => `${server.url}/v1/responses`;
  const base = { model: STORY_CHAT_MODEL, input: STORY_PROMPT, max_output_tokens: 4 };
  const cases: [string, object, number, { param: string | RegExp; code: string; message?: RegExp }][] = [
    ["previous_response_id", { previous_response_id: "resp_123" }, 400, { param: "previous_response_id", code: "unsupported_parameter", message: /stateless/ }],
    ["an item_reference", { input: [{ type: "item_reference", id: "msg_1" }] }, 400, { param: "input[0]", code: "unsupported_parameter", message: /stateless/ }],
    ["a hosted tool type", { tools: [{ type: "web_search" }] }, 400, { param: "tools[0].type", code: "unsupported_parameter", message: /web_search/ }],
    ["an unknown field", { frobnicate: true }, 400, { param: "frobnicate", code: "unknown_parameter" }],
    ["an image part", { input: [{ role: "user", content: [{ type: "input_image", image_url: "data:," }] }] }, 400, { param: "input[0].content[0]", code: "unsupported_content" }],
    ["a function_call without call_id", { input: [{ type: "function_call", name: "f", arguments: "{}" }] }, 400, { param: "input[0].call_id", code: "missing_required_parameter" }],
    ["an unknown model", { model: "no-such-model" }, 404, { param: "model", code: "model_not_found" }],
  ];
  for (const [what, extra, status, expected] of cases) {
    it(`${what} → ${status} ${expected.code}`, async () => {
      const r = await postJson(url(), { ...base, ...extra });
      assert.equal(r.status, status, JSON.stringify(r.json));
      assert.equal(r.json.error.code, expected.code);
      assert.equal(r.json.error.param, expected.param);
      if (expected.message) assert.match(r.json.error.message, expected.message);
    });
  }

  it("store: true (the API's default) is accepted: nothing is stored, the answer is the same", async () => {
    const [stored, plain] = await Promise.all([postJson(url(), { ...base, temperature: 0, store: true }), postJson(url(), { ...base, temperature: 0 })]);
    assert.equal(stored.status, 200);
    assert.equal(stored.json.output_text, plain.json.output_text);
  });
});
