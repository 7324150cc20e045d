import type { OutputParser, ParseEvent } from "./chat-format/types.js";
import type { GenerationOutput, OutputDelta, OutputSink, TokenLogprob } from "./types.js";

/**
 * Turns final text pieces into output deltas: through the model's output parser when the request
 * has tools or the model reasons (answer, reasoning and tool calls apart), else as plain content.
 * Log-probabilities of tokens whose text the parser still holds back ride on the next delta.
 */
export class OutputAssembler {
  private readonly output: GenerationOutput = { content: "", reasoning: "", toolCalls: [] };
  private pendingLogprobs: TokenLogprob[] = [];
  /** Whitespace at the start of the answer, held until text follows: beside tool calls it is dropped. */
  private leadingSpace = "";
  private contentStarted = false;

  constructor(
    private readonly sink: OutputSink,
    private readonly parser: OutputParser | undefined,
    withLogprobs: boolean,
  ) {
    if (withLogprobs) this.output.logprobs = [];
  }

  token(logprob: TokenLogprob): void {
    this.pendingLogprobs.push(logprob);
    this.output.logprobs?.push(logprob);
  }

  text(piece: string): void {
    this.emit(this.parser ? this.parser.push(piece) : [{ type: "content", text: piece }], false);
  }

  /** Flushes what the parser held back; returns the whole output. */
  end(): GenerationOutput {
    const events = this.parser?.end() ?? [];
    this.emit(events, false);
    // An answer of whitespace alone is still the answer; beside tool calls it is dropped.
    const rest: ParseEvent[] = [];
    if (!this.contentStarted && this.leadingSpace && this.output.toolCalls.length === 0) {
      this.contentStarted = true;
      rest.push({ type: "content", text: this.leadingSpace });
    }
    this.emit(rest, true);
    return this.output;
  }

  private emit(events: ParseEvent[], last: boolean): void {
    const delta: OutputDelta = {};
    for (const e of events) {
      if (e.type === "content" && e.text) {
        let text = e.text;
        if (!this.contentStarted) {
          if (text.trim() === "") {
            this.leadingSpace += text;
            continue;
          }
          text = this.leadingSpace + text;
          this.contentStarted = true;
        }
        delta.content = (delta.content ?? "") + text;
        this.output.content += text;
      } else if (e.type === "reasoning" && e.text) {
        delta.reasoning = (delta.reasoning ?? "") + e.text;
        this.output.reasoning += e.text;
      } else if (e.type === "tool_call") {
        if (!this.contentStarted) this.leadingSpace = "";
        (delta.toolCalls ??= []).push({ index: e.index, id: e.id, name: e.name });
        this.output.toolCalls[e.index] = { id: e.id, name: e.name, arguments: "" };
      } else if (e.type === "tool_args" && e.text) {
        const calls = (delta.toolCalls ??= []);
        const open = calls[calls.length - 1];
        if (open && open.index === e.index) open.arguments = (open.arguments ?? "") + e.text;
        else calls.push({ index: e.index, arguments: e.text });
        this.output.toolCalls[e.index]!.arguments += e.text;
      }
    }
    const hasText = delta.content !== undefined || delta.reasoning !== undefined || delta.toolCalls !== undefined;
    if (!hasText && !(last && this.pendingLogprobs.length > 0)) return;
    if (this.pendingLogprobs.length > 0) {
      delta.logprobs = this.pendingLogprobs;
      this.pendingLogprobs = [];
    }
    this.sink(delta);
  }
}
