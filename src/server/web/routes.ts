import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "../errors.js";
import type { WebAssets, WebFile } from "./assets.js";

/** What Ollama clients expect from `GET /`: plain text saying the server runs. */
export const PROBE_TEXT = "Shimmy is running (Ollama API under /api, OpenAI API under /v1)";

/** Where the page's own files are served; their names carry a content hash. */
export const ASSET_PREFIX = "/ui/";

/** Everything the page loads is its own: no inline script, no other origin. */
const CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function sendFile(request: FastifyRequest, reply: FastifyReply, file: WebFile, cacheControl: string): FastifyReply {
  void reply.headers({
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": cacheControl,
    etag: file.etag,
  });
  if (request.headers["if-none-match"] === file.etag) return reply.code(304).send();
  return reply.type(file.type).send(file.body);
}

/** Adds to the Vary header set earlier on the raw response (access.ts sets `Vary: Origin` there). */
function varyAlso(reply: FastifyReply, field: string): void {
  const current = reply.raw.getHeader("vary");
  reply.raw.setHeader("vary", current === undefined ? field : `${String(current)}, ${field}`);
}

/**
 * `GET /`: the chat page for browsers (an Accept naming text/html), Ollama's plain-text probe for
 * everything else; and the page's files under /ui/. `assets` undefined: the page was not built.
 */
export function registerWeb(app: FastifyInstance, assets: WebAssets | undefined): void {
  app.get("/", async (request, reply) => {
    varyAlso(reply, "Accept");
    const browser = request.headers.accept?.toLowerCase().includes("text/html") === true;
    if (!browser) return reply.type("text/plain; charset=utf-8").send(PROBE_TEXT);
    if (assets === undefined) {
      return reply.code(404).type("text/plain; charset=utf-8").send(`${PROBE_TEXT}.\nThe chat page is not built: run \`npm run build\` (it writes dist/web).\n`);
    }
    // Revalidated each time: it names the current hashed files.
    return sendFile(request, reply, assets.index, "no-cache");
  });

  app.get<{ Params: { name: string } }>(`${ASSET_PREFIX}:name`, async (request, reply) => {
    const file = assets?.files.get(request.params.name);
    if (file === undefined) throw new ApiError(404, `No such file of the chat page: ${request.url}`, "invalid_request_error", null, "not_found");
    return sendFile(request, reply, file, "public, max-age=31536000, immutable");
  });
}
