import { classifyError } from "../errors.js";

/** Any error → status + Ollama's envelope `{"error": "…"}` (the status is every API's). */
export function toOllamaError(err: unknown, requestId: string): { status: number; body: { error: string }; internal: boolean; headers?: Record<string, string> } {
  const { error, internal, headers } = classifyError(err, requestId);
  return { status: error.status, body: { error: error.message }, internal, headers };
}
