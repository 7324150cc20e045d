import { toOpenAIError } from "../openai/errors.js";

/**
 * Any error → status + Ollama's envelope `{"error": "…"}`. The status codes and messages are
 * the OpenAI routes' (one mapping of engine errors to HTTP), only the envelope differs.
 */
export function toOllamaError(err: unknown, requestId: string): { status: number; body: { error: string }; internal: boolean; headers?: Record<string, string> } {
  const { status, body, internal, headers } = toOpenAIError(err, requestId);
  return { status, body: { error: body.error.message }, internal, headers };
}
