import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/**
 * Adds a model to a real Ollama store layout under `root`: sha256-named blobs and a manifest per
 * name:tag. Returns the manifest's path.
 */
export function addOllamaModel(root: string, host: string, ns: string, model: string, tag: string, layers: { mediaType: string; file: string }[]): string {
  mkdirSync(join(root, "blobs"), { recursive: true });
  const manifestLayers = layers.map((l) => {
    const hex = sha256File(l.file);
    copyFileSync(l.file, join(root, "blobs", `sha256-${hex}`));
    return { mediaType: `application/vnd.ollama.image.${l.mediaType}`, digest: `sha256:${hex}`, size: readFileSync(l.file).length };
  });
  const dir = join(root, "manifests", host, ns, model);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, tag),
    JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.docker.distribution.manifest.v2+json", config: { mediaType: "application/vnd.docker.container.image.v1+json", digest: "sha256:" + "0".repeat(64), size: 2 }, layers: manifestLayers }),
  );
  return join(dir, tag);
}
