import type { FastifyInstance } from "fastify";
import type { Config } from "../config/config.js";
import { invalidParam } from "./errors.js";

/**
 * Request size limits checked before any heavy work (docs/api.md, Limits): the body's bytes are
 * Fastify's `bodyLimit` (413); the messages count is checked here, before schema validation and
 * the chat template walk every message.
 */
export function checkMessageCount(count: number, config: Pick<Config, "maxMessages">): void {
  if (count > config.maxMessages) {
    throw invalidParam("messages", `This request has ${count} messages; the server accepts at most ${config.maxMessages} (\`shimmy serve --max-messages N\`).`, "too_many_messages");
  }
}

/** Refuses a JSON body with too many `messages` before the route's schema validates each of them. */
export function registerLimits(app: FastifyInstance, config: Pick<Config, "maxMessages">): void {
  app.addHook("preValidation", async (request) => {
    const messages = (request.body as { messages?: unknown } | null | undefined)?.messages;
    if (Array.isArray(messages)) checkMessageCount(messages.length, config);
  });
}
