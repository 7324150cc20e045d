import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { OllamaManifest } from "./ollama-registry.js";
import type { OllamaRef } from "./refs.js";

/** Ollama's store layout: `blobs/sha256-<hex>` and `manifests/<host>/<namespace>/<model>/<tag>`. */
export function ollamaBlobPath(root: string, digest: string): string {
  return join(root, "blobs", digest.replace(":", "-"));
}

export function ollamaManifestPath(root: string, ref: Pick<OllamaRef, "host" | "namespace" | "model" | "tag">): string {
  return join(root, "manifests", ref.host, ref.namespace, ref.model, ref.tag);
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Every manifest file in the store (Ollama globs manifests/*\/*\/*\/*). */
export function allManifestPaths(root: string): string[] {
  const manifests = join(root, "manifests");
  const paths: string[] = [];
  for (const host of listDir(manifests))
    for (const ns of listDir(join(manifests, host)))
      for (const model of listDir(join(manifests, host, ns)))
        for (const tag of listDir(join(manifests, host, ns, model))) paths.push(join(manifests, host, ns, model, tag));
  return paths;
}

/** The digests a manifest file names; an unreadable one names none. */
export function digestsIn(path: string): string[] {
  if (!existsSync(path)) return [];
  try {
    const m = JSON.parse(readFileSync(path, "utf8")) as Partial<OllamaManifest>;
    const layers = [...(Array.isArray(m.layers) ? m.layers : []), ...(m.config ? [m.config] : [])];
    return layers.map((l) => l?.digest).filter((d): d is string => typeof d === "string");
  } catch {
    return [];
  }
}
