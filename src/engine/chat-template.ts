import type { Template } from "@huggingface/jinja";
import type { ChatMessage } from "./types.js";

export interface ChatTemplateContext {
  bosToken: string;
  eosToken: string;
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

  render(messages: ChatMessage[]): string {
    return this.template.render({
      messages: messages.map((m) => ({
        role: m.role,
        content: m.content,
        ...(m.name ? { name: m.name } : {}),
        ...(m.toolCallId ? { tool_call_id: m.toolCallId } : {}),
      })),
      add_generation_prompt: true,
      bos_token: this.ctx.bosToken,
      eos_token: this.ctx.eosToken,
    });
  }
}

/**
 * For models without a chat template: a plain role-labelled transcript ending with the assistant
 * label. Deliberately generic — never a format guessed from the file name.
 */
export class TranscriptChatTemplate {
  readonly kind = "fallback";
  render(messages: ChatMessage[]): string {
    const label: Record<ChatMessage["role"], string> = { system: "System", user: "User", assistant: "Assistant", tool: "Tool" };
    return messages.map((m) => `${label[m.role]}: ${m.content}\n`).join("") + "Assistant:";
  }
}

export type ChatTemplate = JinjaChatTemplate | TranscriptChatTemplate;
