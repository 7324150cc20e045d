import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { packageRoot } from "../../package-root.js";

/** One built file of the chat page, held in memory (the whole page is a few hundred KB). */
export interface WebFile {
  body: Buffer;
  type: string;
  etag: string;
}

/** The built chat page (`npm run build` writes it, scripts/bundle-web.ts): index.html and the files under ui/. */
export interface WebAssets {
  index: WebFile;
  files: Map<string, WebFile>;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

/** dist/web in the package this module belongs to (whether it runs compiled, bundled or from source). */
export function defaultWebDir(): string {
  const root = packageRoot();
  // No package around this module: a folder that does not exist, so the page counts as not built.
  return root === undefined ? join(dirname(fileURLToPath(import.meta.url)), "web") : join(root, "dist", "web");
}

function webFile(path: string): WebFile {
  const body = readFileSync(path);
  return { body, type: TYPES[extname(path)] ?? "application/octet-stream", etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"` };
}

/** Reads the built page once, at start-up; undefined when it was not built (the server then says so). */
export function loadWebAssets(dir = defaultWebDir()): WebAssets | undefined {
  const indexPath = join(dir, "index.html");
  if (!existsSync(indexPath)) return undefined;
  const uiDir = join(dir, "ui");
  const names = existsSync(uiDir) ? readdirSync(uiDir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name) : [];
  return { index: webFile(indexPath), files: new Map(names.map((name) => [name, webFile(join(uiDir, name))])) };
}
