import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { isIP } from "node:net";
import { hostname } from "node:os";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../config/config.js";
import { anthropicErrorBody } from "./anthropic/errors.js";
import { ASSET_PREFIX } from "./web/routes.js";

/**
 * Who may use the server (docs/security.md), checked in one onRequest hook, which runs before the
 * body is read, so a refused request never starts a generation. In order: the Host header (DNS
 * rebinding), the Origin (browser pages; CORS and preflights), the API key.
 */

/** Whether a URL belongs to the Ollama API, whose errors are `{"error": "…"}`. */
function isOllamaPath(url: string): boolean {
  return /^\/api(?:[/?#]|$)/.test(url);
}

/** Whether a URL belongs to Anthropic's Messages API, whose errors are `{"type": "error", "error": {type, message}}`. */
function isAnthropicPath(url: string): boolean {
  return /^\/v1\/messages(?:[/?#]|$)/.test(url);
}

/** An error body in the envelope of the API `url` belongs to (OpenAI's unless Ollama's or Anthropic's). */
export function errorEnvelope(url: string, status: number, message: string, code: string): object {
  if (isOllamaPath(url)) return { error: message };
  if (isAnthropicPath(url)) return anthropicErrorBody(status, message);
  return { error: { message, type: status >= 500 ? "server_error" : "invalid_request_error", param: null, code } };
}

/** localhost, *.localhost, 127.0.0.0/8 and ::1 (bare or bracketed, IPv4-mapped included). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  const v4 = h.startsWith("::ffff:") ? h.slice("::ffff:".length) : h;
  if (isIP(v4) === 4) return v4.startsWith("127.");
  return isIP(h) === 6 && /^(?:0{0,4}:){2,7}0{0,3}1$/.test(h);
}

function isUnspecifiedAddress(host: string): boolean {
  return ["0.0.0.0", "::", "[::]", ""].includes(host);
}

/** Case-insensitive globs where `*` matches any run of characters; "*" alone matches everything. */
function globMatcher(patterns: string[]): (value: string) => boolean {
  const escaped = patterns.map((p) => p.toLowerCase().replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*"));
  const re = escaped.length === 0 ? null : new RegExp(`^(?:${escaped.join("|")})$`);
  return (value) => re !== null && re.test(value.toLowerCase());
}

/** "name:port", "1.2.3.4:port", "[::1]:port" → the host part, lowercase, without a trailing dot. */
function hostOf(header: string): string {
  const bracketed = /^\[([^\]]*)\]/.exec(header);
  const host = bracketed ? bracketed[1]! : header.replace(/:\d*$/, "");
  return host.toLowerCase().replace(/\.$/, "");
}

/**
 * DNS rebinding guard: a hostile page whose name resolves to this machine reaches the server
 * with its own name in Host. Allowed: no Host (only HTTP/1.0 non-browser clients), loopback
 * names and addresses, the bound address, this machine's name (and name.local), the
 * --allowed-hosts globs, and — when bound to every interface — any IP literal (a page at an IP
 * literal is that IP's own origin, not a rebound name).
 */
export function hostPolicy(config: Pick<Config, "host" | "allowedHosts">): (header: string | undefined) => boolean {
  const bound = config.host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  const anyAddress = isUnspecifiedAddress(bound);
  const machine = hostname().toLowerCase();
  const names = new Set([bound, machine, `${machine}.local`]);
  const listed = globMatcher(config.allowedHosts);
  return (header) => {
    if (header === undefined) return true;
    const host = hostOf(header);
    if (isLoopbackHost(host) || names.has(host) || listed(host)) return true;
    return anyAddress && isIP(host) !== 0;
  };
}

const APP_SCHEMES = new Set(["app:", "file:", "tauri:", "vscode-webview:", "chrome-extension:", "moz-extension:", "safari-web-extension:"]);

/**
 * Browser origins allowed: pages on this machine (http/https on loopback or 0.0.0.0, any port),
 * desktop-app and extension schemes (as Ollama allows), and the --cors-origins globs. `null`
 * (sandboxed iframes, file pages) is not allowed: any page can make its requests carry it.
 */
function originPolicy(extra: string[]): (origin: string) => boolean {
  const listed = globMatcher(extra);
  return (origin) => {
    if (listed(origin)) return true;
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false;
    }
    if (url.protocol === "http:" || url.protocol === "https:") return isLoopbackHost(url.hostname) || url.hostname === "0.0.0.0";
    return APP_SCHEMES.has(url.protocol);
  };
}

const sha256 = (text: string): Buffer => createHash("sha256").update(text).digest();

/** Compares the presented keys with every configured key in constant time (equal-length digests). */
function keyChecker(keys: string[]): (headers: IncomingHttpHeaders) => "ok" | "missing" | "wrong" {
  const digests = keys.map(sha256);
  const matches = (presented: string): boolean => {
    const d = sha256(presented);
    let ok = false;
    for (const k of digests) ok = timingSafeEqual(d, k) || ok;
    return ok;
  };
  return (headers) => {
    const bearer = /^Bearer\s+(.*)$/i.exec(headers.authorization ?? "")?.[1]?.trim();
    const xApiKey = typeof headers["x-api-key"] === "string" ? headers["x-api-key"].trim() : undefined;
    const presented = [bearer, xApiKey].filter((k): k is string => k !== undefined && k.length > 0);
    if (presented.length === 0) return "missing";
    return presented.some(matches) ? "ok" : "wrong";
  };
}

const ALLOWED_METHODS = "GET, HEAD, POST, DELETE, OPTIONS";
const DEFAULT_ALLOWED_HEADERS = "authorization, x-api-key, content-type, anthropic-version, anthropic-beta";
/** Chromium caps preflight caching at 2 hours. */
const PREFLIGHT_MAX_AGE_S = 7200;

function pathOf(url: string): string {
  return url.split(/[?#]/, 1)[0]!;
}

/**
 * The chat page and its files, and Ollama's `GET /` probe, load without a key: they hold nothing
 * but the page's code. The page then asks for the key, which every API route needs.
 */
function isPagePath(method: string, path: string): boolean {
  if (method !== "GET" && method !== "HEAD") return false;
  // One file name under the prefix, nothing that a router could read as another route.
  return path === "/" || (path.startsWith(ASSET_PREFIX) && !path.slice(ASSET_PREFIX.length).includes("/"));
}

/**
 * A page this server served itself (the chat page at whatever address it was opened with): its
 * origin is the address the request was sent to. The Host check has already vouched for that
 * address, so a rebound name never gets here.
 */
function isSameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  const o = origin.toLowerCase();
  const h = host.toLowerCase();
  return o === `http://${h}` || o === `https://${h}`;
}

export function registerAccess(app: FastifyInstance, config: Config): void {
  const hostAllowed = hostPolicy(config);
  const originAllowed = originPolicy(config.corsOrigins);
  const checkKey = config.apiKeys.length > 0 ? keyChecker(config.apiKeys) : undefined;
  const openPaths = new Set(config.healthRequiresKey ? [] : ["/health", "/v1/health"]);

  const refuse = (request: FastifyRequest, reply: FastifyReply, status: number, message: string, code: string): FastifyReply => {
    if (status === 401) void reply.header("www-authenticate", "Bearer");
    // A refused WebSocket upgrade owns its raw socket, which nothing else would close.
    if (request.headers.upgrade !== undefined) {
      const socket = request.raw.socket;
      void reply.header("connection", "close");
      reply.raw.once("finish", () => socket.end(() => socket.destroy()));
    }
    return reply.code(status).send(errorEnvelope(request.url, status, message, code));
  };

  app.addHook("onRequest", async (request, reply) => {
    const { headers } = request;
    if (!hostAllowed(headers.host)) {
      return refuse(request, reply, 403, `Host '${headers.host}' is not allowed; start shimmy with --allowed-hosts to allow it (docs/security.md).`, "host_not_allowed");
    }
    // Set on the raw response: streamed responses write their head there, past Fastify's headers.
    reply.raw.setHeader("vary", "Origin");
    const origin = headers.origin;
    if (origin !== undefined) {
      if (!originAllowed(origin) && !isSameOrigin(origin, headers.host)) {
        return refuse(request, reply, 403, `Origin '${origin}' is not allowed; start shimmy with --cors-origins to allow it (docs/security.md).`, "origin_not_allowed");
      }
      reply.raw.setHeader("access-control-allow-origin", origin);
    }
    // Preflights carry no credentials, so they are answered before the key check.
    if (request.method === "OPTIONS") {
      void reply.header("allow", ALLOWED_METHODS);
      if (origin !== undefined) {
        reply.raw.setHeader("vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
        void reply.headers({
          "access-control-allow-methods": ALLOWED_METHODS,
          "access-control-allow-headers": headers["access-control-request-headers"] ?? DEFAULT_ALLOWED_HEADERS,
          "access-control-max-age": String(PREFLIGHT_MAX_AGE_S),
        });
        // Chrome's Private Network Access asks before a public page may reach a local server.
        if (headers["access-control-request-private-network"] === "true") void reply.header("access-control-allow-private-network", "true");
      }
      return reply.code(204).send();
    }
    const path = pathOf(request.url);
    if (checkKey && !openPaths.has(path) && !isPagePath(request.method, path)) {
      const verdict = checkKey(headers);
      if (verdict === "missing") return refuse(request, reply, 401, "Missing API key: send it as 'Authorization: Bearer KEY' or 'x-api-key: KEY'.", "invalid_api_key");
      if (verdict === "wrong") return refuse(request, reply, 401, "Incorrect API key provided.", "invalid_api_key");
    }
  });
}
