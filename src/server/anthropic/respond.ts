import { randomBytes } from "node:crypto";
import type { DoneEvent, OutputDelta, ToolCallDelta, Usage } from "../../engine/types.js";
import type { GenerationTranslator } from "../generation.js";
import { toAnthropicError } from "./errors.js";

export const messageId = (): string => `msg_${randomBytes(12).toString("hex")}`;

/** Engine call ids ("call_…") in Anthropic's form ("toolu_…"); other ids (Mistral's 9 characters, which its template checks) as they are. */
const toolUseId = (id: string): string => (id.startsWith("call_") ? `toolu_${id.slice("call_".length)}` : id);

type StopReason = "end_turn" | "max_tokens" | "stop_sequence" | "tool_use";

function stopReason(done: DoneEvent): StopReason {
  if (done.finishReason === "length") return "max_tokens";
  if (done.finishReason === "tool_calls") return "tool_use";
  return done.stopSequence !== undefined ? "stop_sequence" : "end_turn";
}

/**
 * Usage as Anthropic counts it: `input_tokens` are the prompt tokens evaluated for this request,
 * without those read from the cache (`cache_read_input_tokens`, Shimmy's prefix reuse); the
 * rendered prompt is their sum. Nothing is ever written to a cache on request.
 */
export function usageJson(u: Usage) {
  return { input_tokens: u.promptTokens - u.cachedTokens, output_tokens: u.completionTokens, cache_read_input_tokens: u.cachedTokens, cache_creation_input_tokens: 0 };
}

/** A content block as the message holds it; thinking first, then the answer text, then the calls. */
function contentBlocks(done: DoneEvent, thinkingReturned: boolean): object[] {
  const { reasoning, content, toolCalls } = done.output;
  const blocks: object[] = [];
  if (thinkingReturned && reasoning) blocks.push({ type: "thinking", thinking: reasoning, signature: "" });
  if (content) blocks.push({ type: "text", text: content });
  for (const call of toolCalls) blocks.push({ type: "tool_use", id: toolUseId(call.id), name: call.name, input: JSON.parse(call.arguments) as unknown });
  return blocks;
}

type OpenBlock = { kind: "thinking" | "text" } | { kind: "tool_use"; call: number };

/**
 * Anthropic's stream is a sequence of content blocks, each opened, filled and closed before the
 * next: the engine's deltas (reasoning, then answer text, then tool calls) open a new block
 * whenever their kind changes.
 */
class BlockStream {
  private open: OpenBlock | undefined;
  private index = -1;

  constructor(private readonly thinkingReturned: boolean) {}

  delta(d: OutputDelta): object[] {
    const frames: object[] = [];
    if (d.reasoning && this.thinkingReturned) {
      if (this.open?.kind !== "thinking") frames.push(...this.start({ kind: "thinking" }, { type: "thinking", thinking: "", signature: "" }));
      frames.push(this.deltaFrame({ type: "thinking_delta", thinking: d.reasoning }));
    }
    if (d.content) {
      if (this.open?.kind !== "text") frames.push(...this.start({ kind: "text" }, { type: "text", text: "" }));
      frames.push(this.deltaFrame({ type: "text_delta", text: d.content }));
    }
    for (const piece of d.toolCalls ?? []) frames.push(...this.toolPiece(piece));
    return frames;
  }

  /** Closes the last block. */
  finish(): object[] {
    return this.close();
  }

  private toolPiece(piece: ToolCallDelta): object[] {
    const frames: object[] = [];
    if (piece.id !== undefined) frames.push(...this.start({ kind: "tool_use", call: piece.index }, { type: "tool_use", id: toolUseId(piece.id), name: piece.name, input: {} }));
    else if (this.open?.kind !== "tool_use" || this.open.call !== piece.index) throw new Error(`arguments of tool call ${piece.index} arrived after its block closed`);
    if (piece.arguments) frames.push(this.deltaFrame({ type: "input_json_delta", partial_json: piece.arguments }));
    return frames;
  }

  private start(block: OpenBlock, contentBlock: object): object[] {
    const frames = this.close();
    this.open = block;
    this.index++;
    frames.push({ type: "content_block_start", index: this.index, content_block: contentBlock });
    return frames;
  }

  private close(): object[] {
    if (!this.open) return [];
    const frames: object[] = [];
    // Anthropic closes a thinking block with its signature; local reasoning has none to give.
    if (this.open.kind === "thinking") frames.push(this.deltaFrame({ type: "signature_delta", signature: "" }));
    frames.push({ type: "content_block_stop", index: this.index });
    this.open = undefined;
    return frames;
  }

  private deltaFrame(delta: object): object {
    return { type: "content_block_delta", index: this.index, delta };
  }
}

export interface MessageMeta {
  id: string;
  model: string;
  /** Tokens of the rendered prompt (message_start's count, before the cache is known). */
  promptTokens: number;
  thinkingReturned: boolean;
}

/** One Anthropic message, streamed (message_start … message_stop) or whole. */
export function messagesTranslator(m: MessageMeta): GenerationTranslator {
  const blocks = new BlockStream(m.thinkingReturned);
  const message = (done: DoneEvent | undefined) => ({
    id: m.id,
    type: "message",
    role: "assistant",
    model: m.model,
    content: done ? contentBlocks(done, m.thinkingReturned) : [],
    stop_reason: done ? stopReason(done) : null,
    stop_sequence: done?.stopSequence ?? null,
    usage: usageJson(done?.usage ?? { promptTokens: m.promptTokens, cachedTokens: 0, completionTokens: 0 }),
  });
  return {
    opening: () => [{ type: "message_start", message: message(undefined) }, { type: "ping" }],
    delta: (_choice, d) => blocks.delta(d),
    finish: (_choice, done) => [
      ...blocks.finish(),
      // Whole-message totals: the SDKs take these over message_start's (the cache read is known only now).
      { type: "message_delta", delta: { stop_reason: stopReason(done), stop_sequence: done.stopSequence ?? null }, usage: usageJson(done.usage) },
      { type: "message_stop" },
    ],
    error: (e, requestId) => toAnthropicError(e, requestId).body,
    full: (dones) => message(dones[0]!),
  };
}
