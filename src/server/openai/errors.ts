import { classifyError } from "../errors.js";

/** OpenAI's error envelope. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Any error → status + OpenAI envelope. Unknown errors are 500 and say only the request id. */
export function toOpenAIError(err: unknown, requestId: string): { status: number; body: OpenAIErrorBody; internal: boolean; headers?: Record<string, string> } {
  const { error, internal, headers } = classifyError(err, requestId);
  return { status: error.status, body: { error: { message: error.message, type: error.type, param: error.param, code: error.code } }, internal, headers };
}
