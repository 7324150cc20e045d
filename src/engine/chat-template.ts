import type { Template } from "@huggingface/jinja";
import type { ChatMessage, ToolSpec } from "./types.js";

export interface ChatTemplateContext {
  bosToken: string;
  eosToken: string;
}

export interface RenderOptions {
  /** Functions offered, rendered by templates that know `tools`. */
  tools?: ToolSpec[];
  /** Extra template variables (chat_template_kwargs); they cannot replace the ones Shimmy sets. */
  variables?: Record<string, unknown>;
}

/** Messages as HF transformers hands them to templates: tool calls with object arguments. */
function hfMessage(m: ChatMessage): Record<string, unknown> {
  return {
    role: m.role,
    content: m.content,
    ...(m.name ? { name: m.name } : {}),
    ...(m.toolCallId ? { tool_call_id: m.toolCallId } : {}),
    ...(m.reasoning ? { reasoning_content: m.reasoning } : {}),
    ...(m.toolCalls?.length ? { tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })) } : {}),
  };
}

/** Tools as HF's convention lists them: `{type: "function", function: {name, description, parameters}}`. */
function hfTool(t: ToolSpec): Record<string, unknown> {
  return { type: "function", function: { name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), ...(t.parameters !== undefined ? { parameters: t.parameters } : {}) } };
}

/**
 * A model's own chat template (GGUF `tokenizer.chat_template`), rendered with the variables HF
 * transformers provides (@huggingface/jinja supplies raise_exception and strftime_now). Parsed
 * once per loaded model.
 */
export class JinjaChatTemplate {
  readonly kind = "model";
  private constructor(
    readonly source: string,
    private readonly ctx: ChatTemplateContext,
    private readonly template: Template,
  ) {}

  /** Parses the template; the Jinja engine is imported only when a model with a template loads. */
  static async create(source: string, ctx: ChatTemplateContext): Promise<JinjaChatTemplate> {
    const { Template } = await import("@huggingface/jinja");
    return new JinjaChatTemplate(source, ctx, new Template(source));
  }

  /** Whether the template reads a `tools` variable (so it renders the functions itself). */
  get usesTools(): boolean {
    return /\btools\b/.test(this.source);
  }

  render(messages: ChatMessage[], options: RenderOptions = {}): string {
    return this.template.render(this.context(messages, options));
  }

  /** The variables a render gets (plain data: the prompt worker renders from it too). */
  context(messages: ChatMessage[], options: RenderOptions = {}): Record<string, unknown> {
    return {
      ...options.variables,
      messages: messages.map(hfMessage),
      // Set even when absent, so chat_template_kwargs cannot offer tools the parser will not read.
      tools: options.tools?.length ? options.tools.map(hfTool) : undefined,
      add_generation_prompt: true,
      bos_token: this.ctx.bosToken,
      eos_token: this.ctx.eosToken,
    };
  }
}

/**
 * For models without a chat template: a plain role-labelled transcript ending with the assistant
 * label. Deliberately generic — never a format guessed from the file name.
 */
export class TranscriptChatTemplate {
  readonly kind = "fallback";
  readonly usesTools = false;
  render(messages: ChatMessage[]): string {
    const label: Record<ChatMessage["role"], string> = { system: "System", user: "User", assistant: "Assistant", tool: "Tool" };
    const text = (m: ChatMessage): string => (m.toolCalls?.length ? `${m.content}${JSON.stringify({ tool_calls: m.toolCalls.map((c) => ({ name: c.name, arguments: c.arguments })) })}` : m.content);
    return messages.map((m) => `${label[m.role]}: ${text(m)}\n`).join("") + "Assistant:";
  }
}

export type ChatTemplate = JinjaChatTemplate | TranscriptChatTemplate;
