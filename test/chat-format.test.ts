import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Template } from "@huggingface/jinja";
import { detectChatFormat, detectReasoning, promptOpensReasoning } from "../src/engine/chat-format/detect.js";
import { genericToolsSystemPrompt } from "../src/engine/chat-format/generic.js";
import { collectEvents, parseOutput } from "../src/engine/chat-format/parse-output.js";
import {
  UnknownToolChoiceError,
  type ChatFormat,
  type ChatFormatId,
  type ParsedOutput,
  type ParseEvent,
  type ParserOptions,
  type ReasoningMode,
  type ToolChoice,
  type ToolSpec,
} from "../src/engine/chat-format/types.js";
import { getRuntime } from "../src/engine/llama.js";
import { MODELS_DIR, REPO_ROOT } from "./helpers/paths.js";

const TEMPLATES = join(REPO_ROOT, "test", "fixtures", "chat-templates");
const TINY_AGENT = join(MODELS_DIR, "tiny-agent");
const template = (file: string) => readFileSync(join(TEMPLATES, file), "utf8");
const tinyAgentTemplate = (JSON.parse(readFileSync(join(TINY_AGENT, "hf", "tokenizer_config.json"), "utf8")) as { chat_template: string }).chat_template;

const FORMATS: Record<ChatFormatId, ChatFormat> = {
  hermes: detectChatFormat(template("Qwen-Qwen2.5-7B-Instruct.jinja")),
  llama3: detectChatFormat(template("meta-llama-Llama-3.1-8B-Instruct.jinja")),
  mistral: detectChatFormat(template("mistralai-Mistral-Nemo-Instruct-2407.jinja")),
  "mistral-args": detectChatFormat(template("unsloth-mistral-Devstral-Small-2507.jinja")),
  generic: detectChatFormat(template("stories260K.jinja")),
};

function options(overrides: Partial<ParserOptions> = {}): ParserOptions {
  let n = 0;
  return { tools: true, reasoning: "think-tags", startsInReasoning: false, newId: () => `call_${n++}`, ...overrides };
}

/** Seeded PRNG (mulberry32), so random chunkings are the same on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function streamEvents(format: ChatFormat, chunks: string[], opts: Partial<ParserOptions>): ParseEvent[] {
  const parser = format.createParser(options(opts));
  const events = chunks.flatMap((chunk) => parser.push(chunk));
  events.push(...parser.end());
  for (const event of events) if ("text" in event && event.type !== "tool_args") assert.notEqual(event.text, "", "an empty text event");
  return events;
}

/** Every way of streaming `text` the tests try: per character, each two-way split, and seeded random chunks. */
function chunkings(text: string): string[][] {
  const chars = Array.from(text); // never split inside a surrogate pair: the engine streams whole characters
  const ways: string[][] = [chars];
  for (let i = 1; i < chars.length; i++) ways.push([chars.slice(0, i).join(""), chars.slice(i).join("")]);
  const next = random(text.length);
  for (let round = 0; round < 20; round++) {
    const chunks: string[] = [];
    for (let i = 0; i < chars.length; ) {
      const size = 1 + Math.floor(next() * 8);
      chunks.push(chars.slice(i, i + size).join(""));
      i += size;
    }
    ways.push(chunks);
  }
  return ways;
}

/** Parses `text` whole and asserts every streaming of it reassembles to exactly that result. */
function parseEverywhere(format: ChatFormat, text: string, opts: Partial<ParserOptions> = {}): ParsedOutput {
  const whole = parseOutput(format, text, options(opts));
  for (const chunks of chunkings(text)) {
    assert.deepEqual(collectEvents(streamEvents(format, chunks, opts)), whole, `streamed as ${JSON.stringify(chunks)}`);
  }
  for (const call of whole.toolCalls) assert.equal(typeof JSON.parse(call.arguments), "object");
  return whole;
}

const out = (content: string, toolCalls: Array<[string, string]> = [], reasoning = ""): ParsedOutput => ({
  content,
  reasoning,
  toolCalls: toolCalls.map(([name, args], i) => ({ id: `call_${i}`, name, arguments: args })),
});

describe("format detection on real chat templates", () => {
  const cases: Array<[string, ChatFormatId, ReasoningMode]> = [
    ["Qwen-Qwen2.5-7B-Instruct.jinja", "hermes", "none"],
    ["Qwen-Qwen3-0.6B.jinja", "hermes", "think-tags"],
    ["Qwen-QwQ-32B.jinja", "hermes", "think-tags"],
    ["NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", "hermes", "none"],
    ["meta-llama-Llama-3.1-8B-Instruct.jinja", "llama3", "none"],
    ["meta-llama-Llama-3.2-3B-Instruct.jinja", "llama3", "none"],
    ["mistralai-Mistral-Nemo-Instruct-2407.jinja", "mistral", "none"],
    ["Mistral-Small-3.2-24B-Instruct-2506.jinja", "mistral-args", "none"],
    ["unsloth-mistral-Devstral-Small-2507.jinja", "mistral-args", "none"],
    ["deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", "generic", "think-tags"],
    ["Qwen3-Coder.jinja", "generic", "none"],
    ["stories260K.jinja", "generic", "none"],
  ];
  for (const [file, id, reasoning] of cases) {
    test(`${file} → ${id}, reasoning ${reasoning}`, () => {
      const format = detectChatFormat(template(file));
      assert.equal(format.id, id);
      assert.equal(format.templateHandlesTools, id !== "generic");
      assert.equal(detectReasoning(template(file), false), reasoning);
    });
  }

  test("no template → generic; the vocabulary's think tokens alone give think-tags", () => {
    assert.equal(detectChatFormat(undefined).id, "generic");
    assert.equal(detectReasoning(undefined, false), "none");
    assert.equal(detectReasoning(undefined, true), "think-tags");
  });

  test("tiny-agent: hermes template, and its vocabulary has <think> and </think>", () => {
    assert.equal(detectChatFormat(tinyAgentTemplate).id, "hermes");
    const tokenizer = JSON.parse(readFileSync(join(TINY_AGENT, "hf", "tokenizer.json"), "utf8")) as { added_tokens: { content: string }[] };
    const added = new Set(tokenizer.added_tokens.map((t) => t.content));
    const hasThinkTokens = added.has("<think>") && added.has("</think>");
    assert.equal(hasThinkTokens, true);
    assert.equal(detectReasoning(tinyAgentTemplate, hasThinkTokens), "think-tags");
  });

  test("a DeepSeek-R1 prompt rendered by its template opens reasoning only when thinking is on", () => {
    const tmpl = new Template(template("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"));
    const render = (enable_thinking: boolean) =>
      tmpl.render({ messages: [{ role: "user", content: "Hi" }], add_generation_prompt: true, bos_token: "<s>", enable_thinking });
    assert.ok(render(true).endsWith("<think>\n"));
    assert.equal(promptOpensReasoning(render(true), "think-tags"), true);
    assert.equal(promptOpensReasoning(render(false), "think-tags"), false);
    assert.equal(promptOpensReasoning(render(true), "none"), false);
    assert.equal(promptOpensReasoning("<think>a</think>\n<|Assistant|>", "think-tags"), false);
  });
});

interface RecordedCase {
  name: string;
  format: ChatFormatId;
  text: string;
  expected: ParsedOutput;
  options?: Partial<ParserOptions>;
}

const WEATHER = '{"city": "Paris"}';
const RECORDED: RecordedCase[] = [
  // hermes
  { name: "one call", format: "hermes", text: `<tool_call>\n{"name": "get_weather", "arguments": ${WEATHER}}\n</tool_call>`, expected: out("", [["get_weather", WEATHER]]) },
  {
    name: "text, then two calls",
    format: "hermes",
    text: `Let me check.\n<tool_call>\n{"name": "a", "arguments": {"x": [1, {"y": "}"}]}}\n</tool_call>\n\n<tool_call>{"name": "b", "arguments": {}}</tool_call>\n`,
    expected: out("Let me check.\n", [["a", '{"x": [1, {"y": "}"}]}'], ["b", "{}"]]),
  },
  { name: "arguments as a JSON string, or absent", format: "hermes", text: '<tool_call>{"name": "a", "arguments": "{\\"q\\": 1}"}</tool_call><tool_call>{"name": "b"}</tool_call>', expected: out("", [["a", '{"q": 1}'], ["b", "{}"]]) },
  { name: "the marker's first character without the marker", format: "hermes", text: "a < b, <tool and <tool_cal> are not calls <", expected: out("a < b, <tool and <tool_cal> are not calls <") },
  { name: "a doubled first character before the marker", format: "hermes", text: '<<tool_call>{"name": "a", "arguments": {}}</tool_call>', expected: out("<", [["a", "{}"]]) },
  { name: "a call cut off by max_tokens is content", format: "hermes", text: 'Sure.<tool_call>\n{"name": "get_weather", "argu', expected: out('Sure.<tool_call>\n{"name": "get_weather", "argu') },
  { name: "a marker not followed by JSON is content", format: "hermes", text: "use <tool_call> tags", expected: out("use <tool_call> tags") },
  { name: "malformed JSON is content, a later call still parses", format: "hermes", text: '<tool_call>{"name": "a", "arguments": {]}</tool_call> <tool_call>{"name": "b", "arguments": {}}</tool_call>', expected: out('<tool_call>{"name": "a", "arguments": {]}</tool_call> ', [["b", "{}"]]) },
  { name: "a JSON object without a name is content", format: "hermes", text: '<tool_call>{"arguments": {}}</tool_call>', expected: out('<tool_call>{"arguments": {}}</tool_call>') },
  { name: "without tools the markers are content", format: "hermes", text: `<tool_call>{"name": "a", "arguments": {}}</tool_call>`, options: { tools: false }, expected: out(`<tool_call>{"name": "a", "arguments": {}}</tool_call>`) },
  { name: "reasoning then a call", format: "hermes", text: `<think>\nThe user wants weather.\n</think>\n\n<tool_call>\n{"name": "get_weather", "arguments": ${WEATHER}}\n</tool_call>`, expected: out("", [["get_weather", WEATHER]], "The user wants weather.") },
  { name: "unicode and escapes in arguments", format: "hermes", text: '<tool_call>{"name": "say", "arguments": {"t": "héllo 😀 \\"q\\" \\u00e9"}}</tool_call>', expected: out("", [["say", '{"t": "héllo 😀 \\"q\\" \\u00e9"}']]) },
  // reasoning (any format)
  { name: "reasoning block trimmed", format: "hermes", text: "<think>\n7 plus 5 is 12.\n</think>\n\nThe answer is 12.", expected: out("The answer is 12.", [], "7 plus 5 is 12.") },
  { name: "prompt opened the reasoning", format: "hermes", text: "  step one\n\nstep two \n</think>\nDone.", options: { startsInReasoning: true }, expected: out("Done.", [], "step one\n\nstep two") },
  { name: "unclosed reasoning is all reasoning", format: "llama3", text: "<think> still thinking </thi", expected: out("", [], "still thinking </thi") },
  { name: "think tags later in the text are content", format: "generic", text: "Answer: <think>x</think>", options: { tools: false }, expected: out("Answer: <think>x</think>") },
  { name: "reasoning mode none keeps think tags as content", format: "hermes", text: "<think>x</think> y", options: { reasoning: "none" }, expected: out("<think>x</think> y") },
  // llama3
  { name: "one call", format: "llama3", text: '{"name": "get_weather", "parameters": {"city": "Paris"}}', expected: out("", [["get_weather", WEATHER]]) },
  { name: "python tag, calls separated by ; and newlines", format: "llama3", text: '<|python_tag|>{"name": "a", "parameters": {"x": 1}}; {"name": "b", "arguments": {}}\n{"type": "function", "name": "c", "parameters": {}}', expected: out("", [["a", '{"x": 1}'], ["b", "{}"], ["c", "{}"]]) },
  { name: "plain text", format: "llama3", text: "  The weather is {unknown}.", expected: out("  The weather is {unknown}.") },
  { name: "JSON that is not a call is content", format: "llama3", text: '{"city": "Paris"} is JSON', expected: out('{"city": "Paris"} is JSON') },
  { name: "an unfinished call is content", format: "llama3", text: '{"name": "get_weather", "parameters": {"ci', expected: out('{"name": "get_weather", "parameters": {"ci') },
  // mistral
  { name: "list of calls with ids", format: "mistral", text: '[TOOL_CALLS][{"name": "a", "arguments": {"x": 1}, "id": "abc123XYZ"}, {"name": "b", "arguments": {}, "id": "bad id"}]', expected: { content: "", reasoning: "", toolCalls: [{ id: "abc123XYZ", name: "a", arguments: '{"x": 1}' }, { id: "call_0", name: "b", arguments: "{}" }] } },
  { name: "text then a call", format: "mistral", text: 'Checking [TOOL [TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}]', expected: out("Checking [TOOL ", [["get_weather", WEATHER]]) },
  { name: "unfinished list is content", format: "mistral", text: '[TOOL_CALLS][{"name": "a", "arguments": {}}, {"na', expected: out('[TOOL_CALLS][{"name": "a", "arguments": {}}, {"na') },
  // mistral-args
  { name: "two calls, one with a call id", format: "mistral-args", text: '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]b[CALL_ID]abc123XYZ[ARGS]{}', expected: { content: "", reasoning: "", toolCalls: [{ id: "call_0", name: "get_weather", arguments: WEATHER }, { id: "abc123XYZ", name: "b", arguments: "{}" }] } },
  { name: "a name with a space is content", format: "mistral-args", text: "[TOOL_CALLS]get weather[ARGS]{}", expected: out("[TOOL_CALLS]get weather[ARGS]{}") },
  { name: "arguments not an object is content", format: "mistral-args", text: "x [TOOL_CALLS]f[ARGS][1]", expected: out("x [TOOL_CALLS]f[ARGS][1]") },
  // generic
  { name: "response streams unescaped", format: "generic", text: '{"response": "Hi \\"there\\"\\n\\u00e9\\ud83d\\ude00 \\\\ end"}', expected: out('Hi "there"\né😀 \\ end') },
  { name: "one call", format: "generic", text: `{"tool_call": {"name": "get_weather", "arguments": ${WEATHER}}}`, expected: out("", [["get_weather", WEATHER]]) },
  { name: "parallel calls", format: "generic", text: '\n{ "tool_calls" : [{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}] }\n', expected: out("", [["a", '{"x": 1}'], ["b", "{}"]]) },
  { name: "response with another key first", format: "generic", text: '{"thought": 1, "response": "ok"}', expected: out("ok") },
  { name: "not JSON is content", format: "generic", text: "Plain {text}", expected: out("Plain {text}") },
  { name: "an unknown object is content", format: "generic", text: '{"answer": 42}', expected: out('{"answer": 42}') },
  { name: "a cut-off response keeps what was decoded", format: "generic", text: '{"response": "Hel', expected: out("Hel") },
  { name: "reasoning then JSON", format: "generic", text: '<think>\nhm\n</think>\n{"response": "ok"}', expected: out("ok", [], "hm") },
];

describe("parsers on recorded outputs, complete and streamed every way", () => {
  for (const c of RECORDED) {
    test(`${c.format}: ${c.name}`, () => {
      assert.deepEqual(parseEverywhere(FORMATS[c.format], c.text, c.options), c.expected);
    });
  }

  test("content streams promptly: only a possible marker prefix is held back", () => {
    const parser = FORMATS.hermes.createParser(options({ reasoning: "none" }));
    assert.deepEqual(parser.push("Hello"), [{ type: "content", text: "Hello" }]);
    assert.deepEqual(parser.push(" <tool"), [{ type: "content", text: " " }]);
    assert.deepEqual(parser.push("s>"), [{ type: "content", text: "<tools>" }]);
    assert.deepEqual(parser.end(), []);
    const generic = FORMATS.generic.createParser(options({ reasoning: "none" }));
    assert.deepEqual(generic.push('{"response": "ab\\'), [{ type: "content", text: "ab" }]);
    assert.deepEqual(generic.push('ncd'), [{ type: "content", text: "\ncd" }]);
  });

  test("tiny-agent golden outputs", () => {
    const golden = JSON.parse(readFileSync(join(TINY_AGENT, "golden.json"), "utf8")) as { cases: { name: string; tools?: unknown[]; text: string }[] };
    const expected: Record<string, ParsedOutput> = {
      "weather-call": out("", [["get_weather", '{"city":"Paris"}']]),
      "time-call-with-system": out("", [["get_time", '{"city":"Tokyo"}']]),
      "add-call": out("", [["add", '{"a":12,"b":30}']]),
      "parallel-calls": out("", [["get_weather", '{"city":"Rome"}'], ["get_weather", '{"city":"Oslo"}']]),
      "no-call-chat": out("Hello! How can I help you today?"),
      "after-tool-result": out("It is rainy in Berlin, 12 degrees."),
      "thinking-no-tools": out("The answer is 12.", [], "7 plus 5 is 12."),
      "no-tools-plain": out("I am a small helpful assistant."),
    };
    assert.deepEqual(golden.cases.map((c) => c.name).sort(), Object.keys(expected).sort());
    const format = detectChatFormat(tinyAgentTemplate);
    for (const c of golden.cases) {
      const tools = (c.tools ?? []).length > 0;
      assert.deepEqual(parseEverywhere(format, c.text, { tools, reasoning: "think-tags" }), expected[c.name], c.name);
    }
  });
});

describe("tool grammars, checked by llama.cpp's grammar parser", () => {
  const golden = JSON.parse(readFileSync(join(TINY_AGENT, "golden.json"), "utf8")) as {
    cases: { name: string; text: string; tools?: { function: ToolSpec }[] | null }[];
  };
  const toolSpecs = (tools: { function: ToolSpec }[] | null | undefined): ToolSpec[] => (tools ?? []).map((t) => t.function);
  const tinyTools = [...new Map(golden.cases.flatMap((c) => toolSpecs(c.tools)).map((t) => [t.name, t])).values()];
  const nested: ToolSpec = {
    name: "create_event",
    description: "Create a calendar event",
    parameters: {
      type: "object",
      properties: {
        title: { type: "string" },
        when: { type: "object", properties: { date: { type: "string" }, hour: { type: "integer" } }, required: ["date"] },
        attendees: { type: "array", items: { type: "string" } },
      },
      required: ["title", "when"],
    },
  };
  const allTools = [...tinyTools, nested];
  const choices: ToolChoice[] = [{ mode: "auto" }, { mode: "required" }, { mode: "function", name: "create_event" }];
  const thinking = { mode: "think-tags" as const, startsInReasoning: false };

  async function compile(grammar: string) {
    const llama = await getRuntime({ gpu: false, threads: 1 });
    const compiled = await llama.createGrammar({ grammar });
    // node-llama-cpp's native grammar object can test a whole text against the grammar (it is internal API).
    return (text: string) => (compiled as unknown as { _testText(text: string): boolean })._testText(text);
  }

  test("every format × choice × parallel × reasoning builds a grammar llama.cpp accepts", async () => {
    for (const format of Object.values(FORMATS)) {
      assert.equal(format.toolGrammar(allTools, { mode: "none" }, true), undefined);
      assert.equal(format.toolGrammar([], { mode: "auto" }, true), undefined);
      assert.throws(() => format.toolGrammar(allTools, { mode: "function", name: "nope" }, false), UnknownToolChoiceError);
      for (const choice of choices) {
        for (const parallel of [false, true]) {
          for (const reasoning of [undefined, thinking, { mode: "think-tags" as const, startsInReasoning: true }]) {
            const grammar = format.toolGrammar(allTools, choice, parallel, reasoning);
            assert.ok(grammar, `${format.id} ${choice.mode}`);
            await compile(grammar);
          }
        }
      }
    }
  });

  test("hermes auto: the golden outputs fit, malformed calls do not, plain text does", async () => {
    const format = detectChatFormat(tinyAgentTemplate);
    for (const c of golden.cases.filter((c) => (c.tools ?? []).length > 0)) {
      const fits = await compile(format.toolGrammar(toolSpecs(c.tools), { mode: "auto" }, c.name === "parallel-calls", thinking)!);
      assert.equal(fits(c.text), true, c.name);
    }
    const fits = await compile(format.toolGrammar(tinyTools, { mode: "auto" }, false, thinking)!);
    const call = (body: string) => `<tool_call>\n${body}\n</tool_call>`;
    assert.equal(fits(golden.cases.find((c) => c.name === "thinking-no-tools")!.text), true);
    for (const text of ["", "Hello!", "a < b", "x <tool y", "<tools> and <tool_cal", "ends with <tool_", "ünïcödé 😀\n\tline"]) assert.equal(fits(text), true, text);
    assert.equal(fits(`<<tool_call>\n{"name": "get_time", "arguments": {"city": "Oslo"}}\n</tool_call>`), true);
    for (const text of [
      call('{"name": "get_wether", "arguments": {"city": "Paris"}}'),
      call('{"name": "get_weather", "arguments": "Paris"}'),
      call('{"name": "get_weather", "arguments": {"city": 5}}'),
      call('{"name": "get_weather", "arguments": {}}'),
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}',
      "see <tool_call> here",
      `${call('{"name": "get_time", "arguments": {"city": "Oslo"}}')} and more text`,
      `${call('{"name": "get_time", "arguments": {"city": "Oslo"}}')}\n${call('{"name": "get_time", "arguments": {"city": "Rome"}}')}`,
    ]) {
      assert.equal(fits(text), false, text);
    }
  });

  test("required and function modes allow only calls", async () => {
    const weather = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';
    const required = await compile(FORMATS.hermes.toolGrammar(tinyTools, { mode: "required" }, false)!);
    assert.equal(required(weather), true);
    assert.equal(required("Hello!"), false);
    const only = await compile(FORMATS.hermes.toolGrammar(tinyTools, { mode: "function", name: "get_time" }, false)!);
    assert.equal(only(weather), false);
    assert.equal(only('<tool_call>{"name": "get_time", "arguments": {"city": "Oslo"}}</tool_call>'), true);
    const thinkingRequired = await compile(FORMATS.hermes.toolGrammar(tinyTools, { mode: "required" }, false, thinking)!);
    assert.equal(thinkingRequired(`<think>\nweather, so a call\n</think>\n\n${weather}`), true);
    const opened = await compile(FORMATS.hermes.toolGrammar(tinyTools, { mode: "required" }, false, { mode: "think-tags", startsInReasoning: true })!);
    assert.equal(opened(`weather, so a call\n</think>\n${weather}`), true);
    assert.equal(opened(weather), false);
  });

  // What each format's grammar lets through must parse to the call it spells.
  const samples: Array<{ format: ChatFormatId; text: string; notCalls: string[] }> = [
    { format: "hermes", text: '<tool_call>\n{"name": "create_event", "arguments": {"title": "Lunch", "when": {"date": "2025-01-02", "hour": 12}, "attendees": ["Ann"]}}\n</tool_call>', notCalls: ['<tool_call>\n{"name": "create_event", "arguments": {"title": "Lunch"}}\n</tool_call>'] },
    { format: "llama3", text: '{"name": "create_event", "parameters": {"title": "Lunch", "when": {"date": "2025-01-02", "hour": 12}, "attendees": ["Ann"]}}', notCalls: ['{"title": "Lunch"}', ' {"name": "nope", "parameters": {}}'] },
    { format: "mistral", text: '[TOOL_CALLS][{"name": "create_event", "arguments": {"title": "Lunch", "when": {"date": "2025-01-02", "hour": 12}, "attendees": ["Ann"]}, "id": "abc123XYZ"}]', notCalls: ['[TOOL_CALLS][{"name": "create_event", "arguments": {}}]'] },
    { format: "mistral-args", text: '[TOOL_CALLS]create_event[ARGS]{"title": "Lunch", "when": {"date": "2025-01-02", "hour": 12}, "attendees": ["Ann"]}', notCalls: ["[TOOL_CALLS]create_event[ARGS]{}", "[TOOL_CALLS]nope[ARGS]{}"] },
    { format: "generic", text: '{"tool_call": {"name": "create_event", "arguments": {"title": "Lunch", "when": {"date": "2025-01-02", "hour": 12}, "attendees": ["Ann"]}}}', notCalls: ["Plain text", '{"tool_call": {"name": "create_event", "arguments": {"title": 1}}}'] },
  ];
  const eventArgs = '{"title": "Lunch", "when": {"date": "2025-01-02", "hour": 12}, "attendees": ["Ann"]}';

  for (const sample of samples) {
    test(`${sample.format}: a call the grammar allows parses to that call; text fits only auto`, async () => {
      const format = FORMATS[sample.format];
      const auto = await compile(format.toolGrammar(allTools, { mode: "auto" }, false)!);
      const required = await compile(format.toolGrammar(allTools, { mode: "required" }, false)!);
      assert.equal(auto(sample.text), true);
      assert.equal(required(sample.text), true);
      const parsed = parseEverywhere(format, sample.text);
      assert.equal(parsed.toolCalls.length, 1);
      assert.equal(parsed.toolCalls[0]!.name, "create_event");
      assert.deepEqual(JSON.parse(parsed.toolCalls[0]!.arguments), JSON.parse(eventArgs));
      for (const text of sample.notCalls) assert.equal(required(text), false, text);
      const answer = sample.format === "generic" ? '{"response": "It is sunny."}' : "It is sunny.";
      assert.equal(auto(answer), true);
      assert.equal(required(answer), false);
      assert.deepEqual(parseEverywhere(format, answer).content, "It is sunny.");
      const parallel = await compile(format.toolGrammar(allTools, { mode: "auto" }, true)!);
      const twice = {
        hermes: `${sample.text}\n${sample.text}`,
        llama3: `${sample.text}; ${sample.text}`,
        mistral: sample.text.replace(/\]$/, `, ${sample.text.slice("[TOOL_CALLS][".length)}`),
        "mistral-args": `${sample.text}${sample.text}`,
        generic: `{"tool_calls": [${sample.text.slice('{"tool_call": '.length, -1)}, ${sample.text.slice('{"tool_call": '.length, -1)}]}`,
      }[sample.format];
      assert.equal(parallel(twice), true, twice);
      assert.equal(auto(twice), false);
      assert.equal(parseEverywhere(format, twice).toolCalls.length, 2);
    });
  }

  test("the generic system prompt names the tools and the answer shapes", () => {
    const auto = genericToolsSystemPrompt(tinyTools, { mode: "auto" }, false);
    for (const tool of tinyTools) assert.ok(auto.includes(`"name": "${tool.name}"`), tool.name);
    assert.match(auto, /"tool_call"/);
    assert.match(auto, /"response"/);
    const required = genericToolsSystemPrompt(tinyTools, { mode: "function", name: "add" }, true);
    assert.match(required, /"tool_calls"/);
    assert.doesNotMatch(required, /"response"/);
    assert.doesNotMatch(required, /get_weather/);
    assert.equal(genericToolsSystemPrompt(tinyTools, { mode: "none" }, false), "");
  });
});
