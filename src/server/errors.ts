import type { FastifyError } from "fastify";
import { ContextOverflowError, InputTooLongError, InvalidGenerationError, ModelLoadError, ModelUnusableError, QueueFullError, RequestTimeoutError } from "../engine/errors.js";
import { PullError } from "../pull/errors.js";
import { ModelNotFoundError } from "../registry/registry.js";

/**
 * An error with its HTTP status and OpenAI-style classification (type, param, code). Every
 * protocol renders it in its own envelope; the status is the same on every API.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = "invalid_request_error",
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

export function invalidParam(param: string, message: string, code: string | null = null): ApiError {
  return new ApiError(400, message, "invalid_request_error", param, code);
}

export interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** "/messages/0/role" → "messages[0].role" (the way OpenAI names params). */
function paramName(path: string): string {
  return path
    .split("/")
    .filter(Boolean)
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join("");
}

/** Ajv errors → the error for the first one (unknown, missing or invalid parameter). */
export function fromValidation(errors: AjvError[]): ApiError {
  const e = errors[0]!;
  if (e.keyword === "additionalProperties") {
    const extra = String(e.params.additionalProperty);
    const where = paramName(e.instancePath);
    const full = where ? `${where}.${extra}` : extra;
    return invalidParam(full, `Unrecognized request argument supplied: ${full}`, "unknown_parameter");
  }
  if (e.keyword === "required") {
    const missing = String(e.params.missingProperty);
    const where = paramName(e.instancePath);
    const full = where ? `${where}.${missing}` : missing;
    return invalidParam(full, `Missing required parameter: '${full}'.`, "missing_required_parameter");
  }
  const param = paramName(e.instancePath) || null;
  const detail = e.keyword === "enum" ? `must be one of ${JSON.stringify(e.params.allowedValues)}` : e.message ?? "is invalid";
  return new ApiError(400, `Invalid value for '${param ?? "body"}': ${detail}.`, "invalid_request_error", param, "invalid_value");
}

export interface ClassifiedError {
  error: ApiError;
  /** A bug: logged with its stack, and the client learns only the request id. */
  internal: boolean;
  headers?: Record<string, string>;
}

/** Any error → its status and classification: the one table from engine errors to HTTP. */
export function classifyError(err: unknown, requestId: string): ClassifiedError {
  const ok = (error: ApiError, headers?: Record<string, string>): ClassifiedError => ({ error, internal: false, headers });
  if (err instanceof ApiError) return ok(err);
  if (err instanceof QueueFullError) return ok(new ApiError(503, err.message, "server_error", null, "server_busy"), { "retry-after": String(err.retryAfterSeconds) });
  if (err instanceof RequestTimeoutError) return ok(new ApiError(504, err.message, "server_error", null, "timeout"));
  if (err instanceof ModelNotFoundError) return ok(new ApiError(404, err.message, "invalid_request_error", "model", "model_not_found"));
  if (err instanceof ModelUnusableError) return ok(new ApiError(400, err.message, "invalid_request_error", "model", "model_unusable"));
  if (err instanceof ContextOverflowError) {
    return ok(new ApiError(400, `This model's maximum context length is ${err.contextSize} tokens. However, your messages resulted in ${err.atLeast ? "at least " : ""}${err.promptTokens} tokens (at least 1 more is needed for the completion).`, "invalid_request_error", "messages", "context_length_exceeded"));
  }
  if (err instanceof InputTooLongError) return ok(new ApiError(400, err.message, "invalid_request_error", "input", "context_length_exceeded"));
  if (err instanceof InvalidGenerationError) return ok(new ApiError(400, err.message, "invalid_request_error", err.param ?? null, "invalid_value"));
  if (err instanceof ModelLoadError) return ok(new ApiError(500, err.message, "server_error", "model", "model_load_failed"));
  if (err instanceof PullError) return ok(new ApiError(err.status, err.message, err.status >= 500 ? "server_error" : "invalid_request_error", "model", err.status === 404 ? "model_not_found" : null));
  const fe = err as FastifyError & { validation?: AjvError[] };
  if (fe && Array.isArray(fe.validation) && fe.validation.length > 0) return ok(fromValidation(fe.validation));
  switch (fe?.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return ok(new ApiError(413, "Request body is too large.", "invalid_request_error", null, "request_too_large"));
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return ok(new ApiError(400, `We could not parse the JSON body of your request: ${fe.message}`, "invalid_request_error", null, "invalid_json"));
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return ok(new ApiError(415, "Content-Type must be application/json.", "invalid_request_error", null, "unsupported_media_type"));
  }
  if (fe instanceof SyntaxError && (fe as { statusCode?: number }).statusCode === 400) {
    return ok(new ApiError(400, `We could not parse the JSON body of your request: ${fe.message}`, "invalid_request_error", null, "invalid_json"));
  }
  if (typeof fe?.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500) return ok(new ApiError(fe.statusCode, fe.message, "invalid_request_error"));
  return { error: new ApiError(500, `Internal server error (request id ${requestId}); see the server log.`, "server_error", null, "internal_error"), internal: true };
}
