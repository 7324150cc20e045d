import { apiFetch } from "./api.js";
import { sseData } from "./sse.js";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  temperature: number | null;
  maxTokens: number | null;
}

/** What the server measured for one answer: its `usage`, and Shimmy's `timings` when present. */
export interface AnswerStats {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number | null;
  promptPerSecond: number | null;
  predictedPerSecond: number | null;
}

export interface ChatResult {
  finishReason: string | null;
  stats: AnswerStats | null;
}

interface Chunk {
  choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details?: { cached_tokens?: number } } | null;
  timings?: { prompt_per_second?: number | null; predicted_per_second?: number | null };
  error?: { message?: string };
}

/** The request body: OpenAI's chat completions, streamed, with usage at the end. Unset fields are left to the server. */
export function chatBody(request: ChatRequest): object {
  return {
    model: request.model,
    messages: request.messages,
    stream: true,
    stream_options: { include_usage: true },
    ...(request.temperature === null ? {} : { temperature: request.temperature }),
    ...(request.maxTokens === null ? {} : { max_tokens: request.maxTokens }),
  };
}

/**
 * Streams one answer from /v1/chat/completions, calling `onText` with each piece of text. Ends
 * when the stream does; `signal` aborts it (fetch then rejects with an AbortError).
 */
export async function streamChat(request: ChatRequest, signal: AbortSignal, onText: (text: string) => void): Promise<ChatResult> {
  const response = await apiFetch("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(chatBody(request)),
    signal,
  });
  if (response.body === null) throw new Error("The server sent no stream.");
  const result: ChatResult = { finishReason: null, stats: null };
  for await (const data of sseData(response.body)) {
    if (data === "[DONE]") break;
    const chunk = JSON.parse(data) as Chunk;
    if (chunk.error) throw new Error(chunk.error.message ?? "The generation failed.");
    const choice = chunk.choices?.[0];
    if (choice?.delta?.content) onText(choice.delta.content);
    if (choice?.finish_reason) result.finishReason = choice.finish_reason;
    if (chunk.usage) {
      result.stats = {
        promptTokens: chunk.usage.prompt_tokens,
        completionTokens: chunk.usage.completion_tokens,
        cachedTokens: chunk.usage.prompt_tokens_details?.cached_tokens ?? null,
        promptPerSecond: chunk.timings?.prompt_per_second ?? null,
        predictedPerSecond: chunk.timings?.predicted_per_second ?? null,
      };
    }
  }
  return result;
}
