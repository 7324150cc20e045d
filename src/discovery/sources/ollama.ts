import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Candidate, NoteSink, SearchLocation } from "../types.js";

const DEFAULT_HOST = "registry.ollama.ai";
const DEFAULT_NAMESPACE = "library";
const MEDIA = "application/vnd.ollama.image.";

/** Where Ollama keeps models: $OLLAMA_MODELS, else the user store and the systemd service's store. */
export function ollamaRoots(env: NodeJS.ProcessEnv, home: string): string[] {
  if (env.OLLAMA_MODELS) return [env.OLLAMA_MODELS];
  return [join(home, ".ollama", "models"), "/usr/share/ollama/.ollama/models"];
}

/** Ollama's DisplayShortest: drop the default host and namespace. */
export function ollamaDisplayName(host: string, namespace: string, model: string, tag: string): string {
  if (host === DEFAULT_HOST && namespace === DEFAULT_NAMESPACE) return `${model}:${tag}`;
  if (host === DEFAULT_HOST) return `${namespace}/${model}:${tag}`;
  return `${host}/${namespace}/${model}:${tag}`;
}

interface Layer { mediaType?: unknown; digest?: unknown }

function blobPath(root: string, digest: unknown): string | undefined {
  if (typeof digest !== "string" || !/^sha256:[0-9a-f]{64}$/.test(digest)) return undefined;
  return join(root, "blobs", digest.replace(":", "-"));
}

function listDirs(dir: string, note: NoteSink): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    note(`skipped ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return [];
  }
}

export function scanOllama(root: string, note: NoteSink): { candidates: Candidate[]; location: SearchLocation } {
  const manifests = join(root, "manifests");
  const location: SearchLocation = { source: "ollama", path: root, exists: existsSync(manifests) };
  const candidates: Candidate[] = [];
  if (!location.exists) return { candidates, location };
  // Ollama globs manifests/*/*/*/* (host/namespace/model/tag).
  for (const host of listDirs(manifests, note)) {
    for (const ns of listDirs(join(manifests, host), note)) {
      for (const model of listDirs(join(manifests, host, ns), note)) {
        for (const tag of listDirs(join(manifests, host, ns, model), note)) {
          const file = join(manifests, host, ns, model, tag);
          const display = ollamaDisplayName(host, ns, model, tag);
          let bytes: Buffer;
          let manifest: { layers?: unknown };
          try {
            bytes = readFileSync(file);
            manifest = JSON.parse(bytes.toString("utf8"));
          } catch (e) {
            note(`skipped Ollama manifest ${file}: ${(e as Error).message}`);
            continue;
          }
          const layers = Array.isArray(manifest.layers) ? (manifest.layers as Layer[]) : [];
          const modelLayer = layers.find((l) => l.mediaType === `${MEDIA}model`);
          const modelBlob = blobPath(root, modelLayer?.digest);
          if (!modelBlob) {
            note(`skipped Ollama model ${display}: manifest has no GGUF model layer`);
            continue;
          }
          const adapterBlob = blobPath(root, layers.find((l) => l.mediaType === `${MEDIA}adapter`)?.digest);
          const projectorBlob = blobPath(root, layers.find((l) => l.mediaType === `${MEDIA}projector`)?.digest);
          const aliases = [`${host}/${ns}/${model}:${tag}`];
          if (tag === "latest") aliases.push(display.replace(/:latest$/, ""));
          candidates.push({
            source: "ollama",
            sourcePrefix: "ollama",
            kind: "gguf",
            path: modelBlob,
            nameHint: display,
            loraPath: adapterBlob,
            projectorPath: projectorBlob,
            aliases,
            digest: createHash("sha256").update(bytes).digest("hex"),
            modifiedAt: statSync(file).mtime,
          });
        }
      }
    }
  }
  return { candidates, location };
}
