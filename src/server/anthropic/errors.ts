import { classifyError } from "../errors.js";

/** Anthropic's error types (https://docs.anthropic.com/en/api/errors). */
export type AnthropicErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "request_too_large"
  | "rate_limit_error"
  | "timeout_error"
  | "api_error"
  | "overloaded_error";

export interface AnthropicErrorBody {
  type: "error";
  error: { type: AnthropicErrorType; message: string };
}

/** An HTTP status → Anthropic's error type. A full queue keeps Shimmy's 503 (Anthropic's is 529) with Anthropic's type. */
export function anthropicErrorType(status: number): AnthropicErrorType {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
      return "overloaded_error";
    case 504:
      return "timeout_error";
  }
  return status >= 500 ? "api_error" : "invalid_request_error";
}

export function anthropicErrorBody(status: number, message: string): AnthropicErrorBody {
  return { type: "error", error: { type: anthropicErrorType(status), message } };
}

/** Any error → status + Anthropic's envelope `{"type": "error", "error": {type, message}}` (the status is every API's). */
export function toAnthropicError(err: unknown, requestId: string): { status: number; body: AnthropicErrorBody; internal: boolean; headers?: Record<string, string> } {
  const { error, internal, headers } = classifyError(err, requestId);
  return { status: error.status, body: anthropicErrorBody(error.status, error.message), internal, headers };
}
