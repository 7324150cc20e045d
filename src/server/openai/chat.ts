import type { FastifyInstance } from "fastify";
import type { DoneEvent, OutputDelta, ToolCallDelta } from "../../engine/types.js";
import type { ServerContext } from "../context.js";
import { abortOnDisconnect } from "../disconnect.js";
import { stopList } from "../sampling-fields.js";
import { logIgnoredOnce } from "../ignored-fields.js";
import { type GenerationTranslator, runGeneration } from "../generation.js";
import { toOpenAIError } from "./errors.js";
import { completionId, unixNow } from "./ids.js";
import { chatLogprobs } from "./logprobs.js";
import { type ChatBody, IGNORED_FIELDS, constraintFrom, maxTokensFrom, messagesFrom, refuseUnsupportedChat, samplingFrom, toolChoiceFrom, toolsFrom } from "./request.js";
import { chatCompletionBody } from "./schemas.js";
import { SseWriter } from "./sse.js";
import { summedUsage, timingsJson, usageJson, wireFinish } from "./usage.js";

interface Meta {
  id: string;
  created: number;
  model: string;
}

function toolCallDeltaJson(c: ToolCallDelta) {
  const fn: { name?: string; arguments?: string } = {};
  if (c.name !== undefined) fn.name = c.name;
  // The first piece of a call carries its id, type and name, with the arguments begun ("" if none yet), as OpenAI streams it.
  if (c.arguments !== undefined || c.id !== undefined) fn.arguments = c.arguments ?? "";
  return c.id !== undefined ? { index: c.index, id: c.id, type: "function", function: fn } : { index: c.index, function: fn };
}

function chatTranslator(m: Meta, n: number, includeUsage: boolean, withLogprobs: boolean): GenerationTranslator {
  const chunk = (index: number, delta: object, finish: string | null, logprobs: object | null = null) => ({
    id: m.id,
    object: "chat.completion.chunk",
    created: m.created,
    model: m.model,
    system_fingerprint: null,
    choices: [{ index, delta, logprobs, finish_reason: finish }],
    ...(includeUsage ? { usage: null } : {}),
  });
  return {
    opening: () => Array.from({ length: n }, (_, i) => chunk(i, { role: "assistant", content: "" }, null)),
    delta: (i, d: OutputDelta) => {
      const delta: Record<string, unknown> = {};
      if (d.reasoning !== undefined) delta.reasoning_content = d.reasoning;
      if (d.content !== undefined) delta.content = d.content;
      if (d.toolCalls) delta.tool_calls = d.toolCalls.map(toolCallDeltaJson);
      return [chunk(i, delta, null, withLogprobs && d.logprobs ? chatLogprobs(d.logprobs) : null)];
    },
    finish: (i, done) => [chunk(i, {}, wireFinish(done))],
    closing: (dones) =>
      includeUsage ? [{ id: m.id, object: "chat.completion.chunk", created: m.created, model: m.model, system_fingerprint: null, choices: [], usage: usageJson(summedUsage(dones)), timings: timingsJson(dones[0]!.usage, dones[0]!.timings) }] : [],
    error: (e, requestId) => toOpenAIError(e, requestId).body,
    full: (dones) => ({
      id: m.id,
      object: "chat.completion",
      created: m.created,
      model: m.model,
      system_fingerprint: null,
      choices: dones.map((done, index) => ({ index, message: messageJson(done), logprobs: withLogprobs ? chatLogprobs(done.output.logprobs ?? []) : null, finish_reason: wireFinish(done) })),
      usage: usageJson(summedUsage(dones)),
      timings: timingsJson(dones[0]!.usage, dones[0]!.timings),
    }),
  };
}

function messageJson({ output }: DoneEvent) {
  const calls = output.toolCalls;
  return {
    role: "assistant",
    // OpenAI: content is null when the message holds only tool calls.
    content: calls.length > 0 && output.content === "" ? null : output.content,
    ...(output.reasoning ? { reasoning_content: output.reasoning } : {}),
    ...(calls.length > 0 ? { tool_calls: calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })) } : {}),
    refusal: null,
  };
}

export function registerChat(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Body: ChatBody }>("/v1/chat/completions", { schema: { body: chatCompletionBody } }, async (request, reply) => {
    const body = request.body;
    refuseUnsupportedChat(body);
    logIgnoredOnce(request.log, "openai", body, IGNORED_FIELDS);
    const spec = ctx.pool.resolve(body.model);
    const tools = toolsFrom(body);
    const stream = body.stream === true;
    const withLogprobs = body.logprobs === true;
    const n = body.n ?? 1;
    await runGeneration(ctx, {
      model: spec.name,
      request: {
        input: { kind: "chat", messages: messagesFrom(body, spec.name) },
        sampling: samplingFrom(body),
        maxTokens: maxTokensFrom(body),
        stop: stopList(body.stop),
        tools,
        toolChoice: toolChoiceFrom(body.tool_choice, tools),
        parallelToolCalls: body.parallel_tool_calls ?? undefined,
        constraint: constraintFrom(body),
        reasoning: body.reasoning_format === "none" ? "inline" : "separate",
        // reasoning_effort reaches templates that read it (gpt-oss), as Ollama's think levels do.
        templateVariables: body.reasoning_effort || body.chat_template_kwargs ? { ...(body.reasoning_effort ? { reasoning_effort: body.reasoning_effort } : {}), ...body.chat_template_kwargs } : undefined,
        logprobs: withLogprobs ? { top: body.top_logprobs ?? 0 } : undefined,
      },
      n,
      signal: abortOnDisconnect(reply).signal,
      translator: (loaded) => chatTranslator({ id: completionId("chatcmpl"), created: unixNow(), model: loaded.spec.name }, n, body.stream_options?.include_usage === true, withLogprobs),
      openStream: stream ? () => new SseWriter(reply) : undefined,
      sendFull: (json) => void reply.send(json),
      requestId: request.id,
      log: request.log,
    });
  });
}
