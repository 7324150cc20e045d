import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import type { ContentBlock, Message, MessageCreateParamsNonStreaming, MessageParam, RawMessageStreamEvent, ToolUseBlock } from "@anthropic-ai/sdk/resources/messages";
import type { RunningServer } from "../src/server/server.js";
import { AGENT_MODEL, STORY_CHAT_MODEL, agentCase, agentTool, assertValid, goldenCalls, goldenThinking, startAgentServer } from "./helpers/agents.js";
import { postJson, startTestServer } from "./helpers/server.js";

/** Sampling fields Anthropic's API takes that this SDK version's types no longer list. */
type Params = MessageCreateParamsNonStreaming & { temperature?: number; top_k?: number; top_p?: number };

let server: RunningServer;
let client: Anthropic;
before(async () => {
  server = await startAgentServer();
  client = new Anthropic({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
});
after(() => server.close());

const create = (params: Params): Promise<Message> => client.messages.create(params);

/** Streams `params` through `messages.stream()`: every raw event, and the message the SDK assembled. */
const streamed = (params: Params) => streamedWith(client, params);

async function streamedWith(sdk: Anthropic, params: Params): Promise<{ events: RawMessageStreamEvent[]; message: Message }> {
  const stream = sdk.messages.stream(params);
  const events: RawMessageStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return { events, message: await stream.finalMessage() };
}

/** The text of a message's text blocks. */
const textOf = (m: Message): string => m.content.flatMap((b) => (b.type === "text" ? [b.text] : [])).join("");

/** The tool_use blocks of a message, each checked for Anthropic's id form. */
function toolUses(m: Message): ToolUseBlock[] {
  const uses = m.content.filter((b: ContentBlock): b is ToolUseBlock => b.type === "tool_use");
  for (const u of uses) assert.match(u.id, /^toolu_/);
  return uses;
}

/** A golden case on Anthropic's wire: system on top, calls as tool_use blocks, results as tool_result blocks in a user turn. */
function caseRequest(name: string, extra: Partial<Params> = {}): Params {
  const c = agentCase(name);
  const messages: MessageParam[] = [];
  let system: string | undefined;
  for (const m of c.messages) {
    if (m.role === "system") system = m.content;
    else if (m.role === "assistant") {
      const calls = (m.tool_calls ?? []).map((t) => ({ type: "tool_use" as const, id: t.id, name: t.function.name, input: t.function.arguments }));
      messages.push({ role: "assistant", content: [...(m.content ? [{ type: "text" as const, text: m.content }] : []), ...calls] });
    } else if (m.role === "tool") {
      messages.push({ role: "user", content: [{ type: "tool_result", tool_use_id: m.tool_call_id!, content: m.content }] });
    } else messages.push({ role: "user", content: m.content });
  }
  const tools = c.tools.map((t) => ({ name: t.function.name, description: t.function.description, input_schema: t.function.parameters as Anthropic.Tool.InputSchema }));
  return { model: AGENT_MODEL, max_tokens: 96, temperature: 0, messages, ...(system ? { system } : {}), ...(tools.length ? { tools } : {}), ...extra };
}

/** Rejects with the SDK's error for `params` (sent raw too, to check the body Anthropic's envelope). */
async function refusal(params: unknown, path = "/v1/messages"): Promise<{ error: InstanceType<typeof Anthropic.APIError>; raw: { status: number; json: any } }> {
  const call = path === "/v1/messages" ? client.messages.create(params as Params) : client.messages.countTokens(params as Anthropic.MessageCountTokensParams);
  const error = await call.then(
    () => assert.fail(`accepted ${JSON.stringify(params)}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof Anthropic.APIError, String(error));
  const raw = await postJson(`${server.url}${path}`, params);
  assert.equal(raw.json.type, "error", JSON.stringify(raw.json));
  assert.deepEqual(Object.keys(raw.json.error).sort(), ["message", "type"]);
  assert.equal(typeof raw.json.error.message, "string");
  assert.equal(raw.status, error.status);
  assert.equal(raw.json.error.type, error.type, "the SDK read the envelope's type");
  return { error, raw };
}

describe("Anthropic Messages API through @anthropic-ai/sdk (stories260k-chat)", () => {
  const story: Params = { model: STORY_CHAT_MODEL, max_tokens: 24, temperature: 0, messages: [{ role: "user", content: "Once upon a time" }] };

  it("create at temperature 0 answers the OpenAI route's greedy text, in Anthropic's message shape with its usage", async () => {
    const m = await create(story);
    const openai = await postJson(`${server.url}/v1/chat/completions`, { model: STORY_CHAT_MODEL, max_tokens: 24, temperature: 0, messages: [{ role: "user", content: "Once upon a time" }] });
    assert.equal(openai.status, 200);
    const choice = openai.json.choices[0];
    assert.match(m.id, /^msg_[0-9a-f]{24}$/);
    assert.equal(m.type, "message");
    assert.equal(m.role, "assistant");
    assert.equal(m.model, STORY_CHAT_MODEL);
    assert.deepEqual(m.content, [{ type: "text", text: choice.message.content }]);
    assert.equal(m.stop_reason, choice.finish_reason === "length" ? "max_tokens" : "end_turn");
    assert.equal(m.stop_sequence, null);
    const u = m.usage;
    assert.equal(u.output_tokens, openai.json.usage.completion_tokens);
    assert.equal(u.input_tokens + u.cache_read_input_tokens!, openai.json.usage.prompt_tokens, "input + cache reads = the rendered prompt");
    assert.equal(u.cache_creation_input_tokens, 0);
    assert.ok(u.input_tokens >= 1, "at least the last prompt token is evaluated");
  });

  it("a second identical request reads the prompt prefix from the cache (cache_read_input_tokens)", async () => {
    const first = await create(story);
    const second = await create(story);
    const prompt = first.usage.input_tokens + first.usage.cache_read_input_tokens!;
    assert.equal(second.usage.input_tokens + second.usage.cache_read_input_tokens!, prompt);
    assert.ok(second.usage.cache_read_input_tokens! > 0, JSON.stringify(second.usage));
  });

  it("messages.stream(): Anthropic's event sequence, text deltas accumulating to the non-streamed answer", async () => {
    const whole = await create(story);
    const { events, message } = await streamed(story);
    const types = events.map((e) => e.type);
    assert.equal(types[0], "message_start");
    assert.equal(types.at(-1), "message_stop");
    assert.equal(types.at(-2), "message_delta");
    assert.deepEqual(types.filter((t) => t === "content_block_start" || t === "content_block_stop"), ["content_block_start", "content_block_stop"]);
    assert.equal((events[0] as Anthropic.RawMessageStartEvent).message.id, message.id);
    const deltas = events.filter((e): e is Anthropic.RawContentBlockDeltaEvent => e.type === "content_block_delta");
    assert.ok(deltas.length > 1, "streamed in pieces");
    assert.equal(deltas.map((d) => (d.delta.type === "text_delta" ? d.delta.text : assert.fail(d.delta.type))).join(""), textOf(whole));
    assert.deepEqual(message.content, whole.content);
    assert.equal(message.stop_reason, whole.stop_reason);
    assert.equal(message.usage.output_tokens, whole.usage.output_tokens);
    assert.equal(message.usage.input_tokens + message.usage.cache_read_input_tokens!, whole.usage.input_tokens + whole.usage.cache_read_input_tokens!);
  });

  it("the raw stream names each event (event: lines) and sends a ping after message_start", async () => {
    const res = await fetch(`${server.url}/v1/messages`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...story, max_tokens: 3, stream: true }) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^text\/event-stream/);
    const frames = (await res.text()).trim().split("\n\n").map((f) => /^event: (\w+)\ndata: (.*)$/s.exec(f));
    for (const f of frames) {
      assert.ok(f, "each frame is an event line and a data line");
      assert.equal(JSON.parse(f[2]!).type, f[1], "the event name is the data's type");
    }
    assert.deepEqual(frames.slice(0, 2).map((f) => f![1]), ["message_start", "ping"]);
    const start = JSON.parse(frames[0]![2]!).message;
    assert.deepEqual([start.content, start.stop_reason, start.usage.output_tokens], [[], null, 0], "message_start: the message before any content");
    assert.ok(start.usage.input_tokens > 0);
  });

  it("stop_sequences: the text ends before the matched sequence, stop_reason stop_sequence naming it (streamed too)", async () => {
    const text = textOf(await create(story));
    const words = text.split(" ").filter(Boolean);
    const stop = ` ${words[3]}`;
    const expected = text.slice(0, text.indexOf(stop));
    const params = { ...story, stop_sequences: ["never-in-a-story", stop] };
    const m = await create(params);
    assert.equal(textOf(m), expected);
    assert.equal(m.stop_reason, "stop_sequence");
    assert.equal(m.stop_sequence, stop);
    const s = await streamed(params);
    assert.equal(textOf(s.message), expected);
    assert.equal(s.message.stop_reason, "stop_sequence");
    assert.equal(s.message.stop_sequence, stop);
  });

  it("max_tokens: stop_reason max_tokens with exactly that many output tokens", async () => {
    const m = await create({ ...story, max_tokens: 5 });
    assert.equal(m.stop_reason, "max_tokens");
    assert.equal(m.usage.output_tokens, 5);
  });

  it("count_tokens equals the prompt a create evaluates (input + cache reads), with a system prompt", async () => {
    const params = { ...story, system: [{ type: "text" as const, text: "Tell a story." }] };
    const counted = await client.messages.countTokens({ model: params.model, messages: params.messages, system: params.system });
    const m = await create(params);
    assert.equal(counted.input_tokens, m.usage.input_tokens + m.usage.cache_read_input_tokens!);
    const plain = await client.messages.countTokens({ model: story.model, messages: story.messages });
    assert.ok(counted.input_tokens > plain.input_tokens, "the system prompt is counted");
  });

  it("errors come as the SDK's typed errors, the body in Anthropic's envelope", async () => {
    const { max_tokens: _drop, ...noMax } = story;
    const missing = await refusal(noMax);
    assert.ok(missing.error instanceof Anthropic.BadRequestError);
    assert.equal(missing.raw.json.error.type, "invalid_request_error");
    assert.match(missing.raw.json.error.message, /max_tokens/);

    const unknown = await refusal({ ...story, model: "no-such-model" });
    assert.ok(unknown.error instanceof Anthropic.NotFoundError);
    assert.equal(unknown.raw.json.error.type, "not_found_error");
    assert.match(unknown.raw.json.error.message, /no-such-model/);

    const image = await refusal({ ...story, messages: [{ role: "user", content: [{ type: "text", text: "What is this?" }, { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } }] }] });
    assert.ok(image.error instanceof Anthropic.BadRequestError);
    assert.match(image.raw.json.error.message, /image/);

    for (const [choice, pattern] of [
      [{ type: "tool", name: "no_such_tool" }, /no_such_tool/],
      [{ type: "required" }, /tool_choice\.type/],
      [{ type: "any" }, /needs tools/],
    ] as const) {
      const bad = await refusal({ ...story, tool_choice: choice });
      assert.ok(bad.error instanceof Anthropic.BadRequestError, JSON.stringify(choice));
      assert.match(bad.raw.json.error.message, pattern);
    }

    const extra = await refusal({ ...story, frequency_penalty: 1 });
    assert.match(extra.raw.json.error.message, /frequency_penalty/);
    const nested = await refusal({ ...story, messages: [{ role: "user", content: [{ type: "text", text: "hi", colour: "red" }] }] });
    assert.match(nested.raw.json.error.message, /messages\[0\]\.content\[0\]\.colour/);
    const mcp = await refusal({ ...story, mcp_servers: [{ type: "url", url: "http://127.0.0.1:1", name: "x" }] });
    assert.match(mcp.raw.json.error.message, /MCP/);
    const prefill = await refusal({ ...story, messages: [...story.messages, { role: "assistant", content: "The end" }] });
    assert.match(prefill.raw.json.error.message, /prefill/);
    const countMissing = await refusal({ model: STORY_CHAT_MODEL }, "/v1/messages/count_tokens");
    assert.match(countMissing.raw.json.error.message, /messages/);
  });

  it("fields that do not change the answer are accepted: metadata, service_tier, cache_control, anthropic-beta", async () => {
    const params = {
      ...story,
      max_tokens: 4,
      metadata: { user_id: "someone" },
      service_tier: "auto" as const,
      cache_control: { type: "ephemeral" as const },
      system: [{ type: "text" as const, text: "Tell a story.", cache_control: { type: "ephemeral" as const } }],
    };
    const m = await client.messages.create(params, { headers: { "anthropic-beta": "prompt-caching-2024-07-31" } });
    assert.equal(m.usage.output_tokens, 4);
  });

  it("an unknown route under /v1/messages is a 404 in Anthropic's envelope", async () => {
    const r = await postJson(`${server.url}/v1/messages/batches`, {});
    assert.equal(r.status, 404);
    assert.equal(r.json.type, "error");
    assert.equal(r.json.error.type, "not_found_error");
  });
});

describe("Anthropic API keys (x-api-key, as the SDK sends it)", () => {
  it("the right key is let through; a wrong one is the SDK's AuthenticationError in Anthropic's envelope", async () => {
    const keyed = await startTestServer({ apiKeys: ["sk-anthropic-test"] });
    try {
      const ok = new Anthropic({ baseURL: keyed.url, apiKey: "sk-anthropic-test", maxRetries: 0 });
      const counted = await ok.messages.countTokens({ model: STORY_CHAT_MODEL, messages: [{ role: "user", content: "Once upon a time" }] });
      assert.ok(counted.input_tokens > 0);
      const wrong = new Anthropic({ baseURL: keyed.url, apiKey: "sk-wrong", maxRetries: 0 });
      const error = await wrong.messages.countTokens({ model: STORY_CHAT_MODEL, messages: [{ role: "user", content: "hi" }] }).then(
        () => assert.fail("a wrong key was accepted"),
        (e: unknown) => e,
      );
      assert.ok(error instanceof Anthropic.AuthenticationError, String(error));
      assert.equal(error.type, "authentication_error");
      const raw = await postJson(`${keyed.url}/v1/messages`, { model: STORY_CHAT_MODEL, max_tokens: 1, messages: [] });
      assert.equal(raw.status, 401);
      assert.deepEqual(raw.json, { type: "error", error: { type: "authentication_error", message: raw.json.error.message } });
    } finally {
      await keyed.close();
    }
  });
});

describe("Anthropic errors after the stream has started", () => {
  it("the time limit reached mid-stream is an `event: error` in Anthropic's envelope, which the SDK throws", async () => {
    const limited = await startTestServer({ parallel: 1, requestTimeoutMs: 300 });
    try {
      const params = { model: "stories260k", max_tokens: 2000, temperature: 0, messages: [{ role: "user" as const, content: "Once upon a time" }] };
      // Loaded first: the stream opens with the first token, well within the limit.
      await postJson(`${limited.url}/v1/messages`, { ...params, max_tokens: 1 });
      const res = await fetch(`${limited.url}/v1/messages`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...params, stream: true }) });
      assert.equal(res.status, 200);
      const frames = (await res.text()).trim().split("\n\n");
      assert.match(frames.at(-1)!, /^event: error\ndata: /);
      const body = JSON.parse(frames.at(-1)!.split("\ndata: ")[1]!);
      assert.equal(body.type, "error");
      assert.equal(body.error.type, "timeout_error");
      assert.ok(!frames.some((f) => f.startsWith("event: message_stop")), "no message_stop after an error");
      const sdk = new Anthropic({ baseURL: limited.url, apiKey: "unused", maxRetries: 0 });
      const error = await streamedWith(sdk, params).then(
        () => assert.fail("the stream ended without an error"),
        (e: unknown) => e,
      );
      assert.ok(error instanceof Anthropic.APIError, String(error));
      assert.equal(error.type, "timeout_error");
    } finally {
      await limited.close();
    }
  });
});

describe("Anthropic tool use (tiny-agent)", () => {
  for (const [name, choice] of [["weather-call", { type: "auto" }], ["time-call-with-system", undefined], ["add-call", { type: "auto" }]] as const) {
    it(`${name}: tool_choice ${choice?.type ?? "omitted"} → tool_use blocks with golden's call, stop_reason tool_use`, async () => {
      const m = await create(caseRequest(name, choice ? { tool_choice: choice } : {}));
      assert.deepEqual(toolUses(m).map((u) => ({ name: u.name, arguments: u.input })), goldenCalls(agentCase(name).text));
      assert.equal(textOf(m), "", "only calls");
      assert.equal(m.stop_reason, "tool_use");
    });
  }

  it("parallel-calls: two tool_use blocks with distinct ids; disable_parallel_tool_use → only the first", async () => {
    const golden = goldenCalls(agentCase("parallel-calls").text);
    const m = await create(caseRequest("parallel-calls"));
    const uses = toolUses(m);
    assert.deepEqual(uses.map((u) => ({ name: u.name, arguments: u.input })), golden);
    assert.equal(new Set(uses.map((u) => u.id)).size, 2);
    const one = await create(caseRequest("parallel-calls", { tool_choice: { type: "auto", disable_parallel_tool_use: true } }));
    assert.deepEqual(toolUses(one).map((u) => ({ name: u.name, arguments: u.input })), golden.slice(0, 1));
    assert.equal(one.stop_reason, "tool_use");
  });

  it("a forced tool on 'Hello!' → a tool_use of that tool whose input validates against its input_schema", async () => {
    const m = await create(caseRequest("no-call-chat", { tool_choice: { type: "tool", name: "get_stock_price" } }));
    const uses = toolUses(m);
    assert.equal(uses.length, 1);
    assert.equal(uses[0]!.name, "get_stock_price");
    assertValid(agentTool("get_stock_price").function.parameters, uses[0]!.input, "get_stock_price input");
    assert.equal(m.stop_reason, "tool_use");
  });

  it("tool_choice any on 'Hello!' → calls to offered tools; none on a weather question → no call", async () => {
    const c = agentCase("no-call-chat");
    const any = await create(caseRequest("no-call-chat", { tool_choice: { type: "any" } }));
    assert.ok(toolUses(any).length > 0);
    for (const u of toolUses(any)) assertValid(c.tools.find((t) => t.function.name === u.name)!.function.parameters, u.input, u.name);
    const none = await create(caseRequest("weather-call", { tool_choice: { type: "none" }, max_tokens: 48 }));
    assert.deepEqual(toolUses(none), []);
    assert.notEqual(none.stop_reason, "tool_use");
  });

  it("no-call-chat with tools offered: golden text, end_turn", async () => {
    const m = await create(caseRequest("no-call-chat"));
    assert.deepEqual(m.content, [{ type: "text", text: agentCase("no-call-chat").text }]);
    assert.equal(m.stop_reason, "end_turn");
  });

  it("after-tool-result: the tool_use / tool_result history → golden text", async () => {
    const m = await create(caseRequest("after-tool-result"));
    assert.deepEqual(m.content, [{ type: "text", text: agentCase("after-tool-result").text }]);
    assert.equal(m.stop_reason, "end_turn");
  });

  it("count_tokens with tools and a tool_result history equals the create's prompt", async () => {
    const params = caseRequest("after-tool-result");
    const counted = await client.messages.countTokens({ model: params.model, messages: params.messages, tools: params.tools });
    const m = await create(params);
    assert.equal(counted.input_tokens, m.usage.input_tokens + m.usage.cache_read_input_tokens!);
  });

  it("streamed: a tool_use block per call, input_json_delta pieces concatenating to the input", async () => {
    for (const params of [caseRequest("weather-call"), caseRequest("parallel-calls"), caseRequest("no-call-chat", { tool_choice: { type: "tool", name: "get_stock_price" } })]) {
      const whole = await create(params);
      const { events, message } = await streamed(params);
      const starts = events.filter((e): e is Anthropic.RawContentBlockStartEvent => e.type === "content_block_start");
      assert.deepEqual(starts.map((s) => s.index), starts.map((_, i) => i), "blocks are numbered in order");
      const json = starts.map((s) => {
        assert.equal(s.content_block.type, "tool_use");
        assert.deepEqual((s.content_block as ToolUseBlock).input, {}, "the block starts with an empty input");
        return events
          .filter((e): e is Anthropic.RawContentBlockDeltaEvent => e.type === "content_block_delta" && e.index === s.index)
          .map((e) => (e.delta.type === "input_json_delta" ? e.delta.partial_json : assert.fail(e.delta.type)))
          .join("");
      });
      assert.deepEqual(json.map((j) => JSON.parse(j)), toolUses(whole).map((u) => u.input));
      assert.deepEqual(toolUses(message).map((u) => [u.name, u.input]), toolUses(whole).map((u) => [u.name, u.input]));
      assert.equal(message.stop_reason, "tool_use");
    }
  });
});

describe("Anthropic thinking (tiny-agent thinks before arithmetic)", () => {
  const expected = goldenThinking(agentCase("thinking-no-tools").text);

  it("unset or enabled: a thinking block, then the text", async () => {
    for (const extra of [{}, { thinking: { type: "enabled" as const, budget_tokens: 64 } }]) {
      const m = await create(caseRequest("thinking-no-tools", extra));
      assert.deepEqual(m.content, [
        { type: "thinking", thinking: expected.reasoning, signature: "" },
        { type: "text", text: expected.content },
      ]);
      assert.equal(m.stop_reason, "end_turn");
    }
  });

  it("streamed: thinking_delta (closed by a signature_delta), then text_delta", async () => {
    const { events, message } = await streamed(caseRequest("thinking-no-tools"));
    const deltas = events.filter((e): e is Anthropic.RawContentBlockDeltaEvent => e.type === "content_block_delta");
    const kinds = [...new Set(deltas.map((d) => `${d.index}:${d.delta.type}`))];
    assert.deepEqual(kinds, ["0:thinking_delta", "0:signature_delta", "1:text_delta"]);
    assert.deepEqual(message.content, [
      { type: "thinking", thinking: expected.reasoning, signature: "" },
      { type: "text", text: expected.content },
    ]);
  });

  it("disabled: no thinking block, the text alone; budget_tokens ≥ max_tokens is refused", async () => {
    const m = await create(caseRequest("thinking-no-tools", { thinking: { type: "disabled" } }));
    assert.deepEqual(m.content, [{ type: "text", text: expected.content }]);
    const bad = await refusal(caseRequest("thinking-no-tools", { thinking: { type: "enabled", budget_tokens: 96 } }));
    assert.match(bad.raw.json.error.message, /budget_tokens/);
  });
});
