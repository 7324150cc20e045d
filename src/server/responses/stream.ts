import type { DoneEvent, OutputDelta, ToolCallDelta } from "../../engine/types.js";
import { classifyError } from "../errors.js";
import type { GenerationTranslator } from "../generation.js";
import { type ItemStatus, type ResponseMeta, functionCallItem, itemId, logprobsJson, messageItem, outputItems, outputTextPart, reasoningItem, responseObject } from "./response.js";

/** The output item being streamed: its kind, place in `output`, id, and the text so far. */
interface OpenItem {
  kind: "reasoning" | "message" | "call";
  outputIndex: number;
  id: string;
  text: string;
  /** Calls: the engine's call index, call id and name. */
  call?: { index: number; callId: string; name: string };
  logprobs: object[];
}

/** OpenAI's error envelope fields for an error after the stream began, as an `error` event. */
function errorFields(err: unknown, requestId: string) {
  const { error } = classifyError(err, requestId);
  return { code: error.code, message: error.message, param: error.param };
}

/**
 * The Responses API's typed events for one generation (and its single answer, `full`). Output items open as the engine's deltas
 * change kind (reasoning → message → function calls) and close when the next begins; every event
 * carries the next `sequence_number`, and the closing event holds the response with the items
 * exactly as they streamed.
 */
export class ResponsesTranslator implements GenerationTranslator {
  private sequence = 0;
  private readonly items: object[] = [];
  private open: OpenItem | null = null;
  /** Log-probabilities of tokens that produced no answer text yet: they go with the next text delta. */
  private pendingLogprobs: object[] = [];

  constructor(private readonly m: ResponseMeta) {}

  private event(type: string, fields: object): object {
    return { type, sequence_number: this.sequence++, ...fields };
  }

  private at(o: OpenItem) {
    return { item_id: o.id, output_index: o.outputIndex };
  }

  opening(): object[] {
    const response = responseObject(this.m, []);
    return [this.event("response.created", { response }), this.event("response.in_progress", { response })];
  }

  delta(_choice: number, d: OutputDelta): object[] {
    const events: object[] = [];
    if (this.m.withLogprobs && d.logprobs) this.pendingLogprobs.push(...logprobsJson(d.logprobs));
    if (d.reasoning) events.push(...this.ensure("reasoning"), ...this.appendReasoning(d.reasoning));
    if (d.content) events.push(...this.ensure("message"), ...this.appendText(d.content));
    for (const piece of d.toolCalls ?? []) events.push(...this.callPiece(piece));
    return events;
  }

  finish(_choice: number, done: DoneEvent): object[] {
    const status: ItemStatus = done.finishReason === "length" ? "incomplete" : "completed";
    // Every answer has a message unless it is only calls (an empty one when the model said nothing).
    const events = this.items.length === 0 && !this.open ? this.ensure("message") : [];
    events.push(...this.close(status));
    const response = responseObject(this.m, this.items, done);
    events.push(this.event(response.status === "incomplete" ? "response.incomplete" : "response.completed", { response }));
    return events;
  }

  error(err: unknown, requestId: string): object {
    return this.event("error", errorFields(err, requestId));
  }

  /** A non-streamed answer: the finished response object (Responses has no n: one generation). */
  full(dones: DoneEvent[]): object {
    const done = dones[0]!;
    return responseObject(this.m, outputItems(this.m, done), done);
  }

  /** Opens an item of `kind` unless one is open, closing the item before it. */
  private ensure(kind: "reasoning" | "message"): object[] {
    if (this.open?.kind === kind) return [];
    const events = this.close("completed");
    const o: OpenItem = { kind, outputIndex: this.items.length, id: itemId(kind === "message" ? "msg" : "rs"), text: "", logprobs: [] };
    this.open = o;
    if (kind === "message") {
      events.push(this.event("response.output_item.added", { output_index: o.outputIndex, item: messageItem(o.id, "in_progress", []) }));
      events.push(this.event("response.content_part.added", { ...this.at(o), content_index: 0, part: outputTextPart("", this.m.withLogprobs ? [] : undefined) }));
    } else if (this.m.reasoningAsSummary) {
      events.push(this.event("response.output_item.added", { output_index: o.outputIndex, item: { id: o.id, type: "reasoning", summary: [] } }));
      events.push(this.event("response.reasoning_summary_part.added", { ...this.at(o), summary_index: 0, part: { type: "summary_text", text: "" } }));
    } else {
      events.push(this.event("response.output_item.added", { output_index: o.outputIndex, item: { id: o.id, type: "reasoning", summary: [], content: [] } }));
      events.push(this.event("response.content_part.added", { ...this.at(o), content_index: 0, part: { type: "reasoning_text", text: "" } }));
    }
    return events;
  }

  private appendReasoning(text: string): object[] {
    const o = this.open!;
    o.text += text;
    return this.m.reasoningAsSummary
      ? [this.event("response.reasoning_summary_text.delta", { ...this.at(o), summary_index: 0, delta: text })]
      : [this.event("response.reasoning_text.delta", { ...this.at(o), content_index: 0, delta: text })];
  }

  private appendText(text: string): object[] {
    const o = this.open!;
    o.text += text;
    const logprobs = this.pendingLogprobs;
    this.pendingLogprobs = [];
    o.logprobs.push(...logprobs);
    return [this.event("response.output_text.delta", { ...this.at(o), content_index: 0, delta: text, logprobs })];
  }

  private callPiece(piece: ToolCallDelta): object[] {
    const events: object[] = [];
    if (piece.id !== undefined) {
      events.push(...this.close("completed"));
      const o: OpenItem = { kind: "call", outputIndex: this.items.length, id: itemId("fc"), text: "", call: { index: piece.index, callId: piece.id, name: piece.name ?? "" }, logprobs: [] };
      this.open = o;
      events.push(this.event("response.output_item.added", { output_index: o.outputIndex, item: functionCallItem(o.id, o.call!.callId, o.call!.name, "", "in_progress") }));
    }
    const o = this.open;
    if (piece.arguments && o?.kind === "call" && o.call!.index === piece.index) {
      o.text += piece.arguments;
      events.push(this.event("response.function_call_arguments.delta", { ...this.at(o), delta: piece.arguments }));
    }
    return events;
  }

  /** Closes the open item: its `.done` events, then `output_item.done` with the whole item. */
  private close(status: ItemStatus): object[] {
    const o = this.open;
    if (!o) return [];
    this.open = null;
    const events: object[] = [];
    let item: object;
    if (o.kind === "message") {
      const logprobs = this.m.withLogprobs ? o.logprobs : undefined;
      const part = outputTextPart(o.text, logprobs);
      events.push(this.event("response.output_text.done", { ...this.at(o), content_index: 0, text: o.text, logprobs: logprobs ?? [] }));
      events.push(this.event("response.content_part.done", { ...this.at(o), content_index: 0, part }));
      item = messageItem(o.id, status, [part]);
    } else if (o.kind === "call") {
      events.push(this.event("response.function_call_arguments.done", { ...this.at(o), name: o.call!.name, arguments: o.text }));
      item = functionCallItem(o.id, o.call!.callId, o.call!.name, o.text, "completed");
    } else {
      item = reasoningItem(o.id, o.text, this.m.reasoningAsSummary);
      if (this.m.reasoningAsSummary) {
        events.push(this.event("response.reasoning_summary_text.done", { ...this.at(o), summary_index: 0, text: o.text }));
        events.push(this.event("response.reasoning_summary_part.done", { ...this.at(o), summary_index: 0, part: { type: "summary_text", text: o.text } }));
      } else {
        events.push(this.event("response.reasoning_text.done", { ...this.at(o), content_index: 0, text: o.text }));
        events.push(this.event("response.content_part.done", { ...this.at(o), content_index: 0, part: { type: "reasoning_text", text: o.text } }));
      }
    }
    this.items.push(item);
    events.push(this.event("response.output_item.done", { output_index: o.outputIndex, item }));
    return events;
  }
}
