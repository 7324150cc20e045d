import { type Dirent, existsSync, readdirSync, readlinkSync } from "node:fs";
import { rm, rmdir } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import type { ModelSpec } from "../discovery/types.js";
import { PullError } from "./errors.js";
import { allManifestPaths, digestsIn, ollamaBlobPath, ollamaManifestPath } from "./ollama-store.js";
import { parseOllamaName } from "./refs.js";

export interface DeleteResult {
  /** The model's own entries removed (links, manifest, files). */
  removed: string[];
  /** Blobs removed because nothing refers to them any more. */
  blobsRemoved: string[];
}

/** Removes a directory if it is empty; says whether it did. */
async function removeIfEmpty(dir: string): Promise<boolean> {
  try {
    await rmdir(dir);
    return true;
  } catch {
    return false;
  }
}

function entries(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

/** Every file (link) left under an HF repo's snapshots, and the blobs they point at. */
function snapshotLinks(snapshots: string): { files: number; blobs: Set<string> } {
  const blobs = new Set<string>();
  let files = 0;
  const walk = (dir: string): void => {
    for (const e of entries(dir)) {
      const full = join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else {
        files++;
        if (e.isSymbolicLink()) blobs.add(resolve(dirname(full), readlinkSync(full)));
      }
    }
  };
  walk(snapshots);
  return { files, blobs };
}

/** An HF cache model: its snapshot entries, then blobs no snapshot links to; the repo folder once empty. */
async function deleteFromHfCache(spec: ModelSpec): Promise<DeleteResult> {
  const at = spec.files[0]!.lastIndexOf(`${sep}snapshots${sep}`);
  if (at < 0) throw new PullError(500, `${spec.files[0]} is not inside a Hugging Face cache snapshot`);
  const repoDir = spec.files[0]!.slice(0, at);
  const removed: string[] = [];
  for (const path of spec.format === "gguf" ? spec.files : [spec.files[0]!]) {
    await rm(path, { recursive: true, force: true });
    removed.push(path);
  }
  const left = snapshotLinks(join(repoDir, "snapshots"));
  if (left.files === 0) {
    await rm(repoDir, { recursive: true, force: true });
    return { removed: [...removed, repoDir], blobsRemoved: [] };
  }
  const blobsRemoved: string[] = [];
  for (const e of entries(join(repoDir, "blobs"))) {
    const blob = join(repoDir, "blobs", e.name);
    if (e.isFile() && !e.name.endsWith(".incomplete") && !left.blobs.has(blob)) {
      await rm(blob, { force: true });
      blobsRemoved.push(blob);
    }
  }
  return { removed, blobsRemoved };
}

const LONG_NAME = /^([^/]+)\/([^/]+)\/([^/:]+):([^/:]+)$/;

/**
 * Which manifest a name means: one file may be listed by several manifests (discovery shows one
 * model with their long names as aliases), so the name typed picks among them.
 */
function manifestFor(spec: ModelSpec, root: string, requested: string | undefined): string {
  const names = spec.aliases.map((a) => LONG_NAME.exec(a)).filter((m): m is RegExpExecArray => m !== null);
  let wanted: RegExpExecArray | undefined = names.length === 1 ? names[0] : undefined;
  if (requested !== undefined) {
    try {
      const r = parseOllamaName(requested);
      wanted = names.find((m) => m[1] === r.host && m[2] === r.namespace && m[3] === r.model && m[4] === r.tag) ?? wanted;
    } catch {
      // Not an Ollama name (a path, say): the model's only manifest, if it has one.
    }
  }
  if (!wanted) throw new PullError(400, `${spec.name} is listed by several Ollama manifests (${names.map((m) => m[0]).join(", ")}); name the one to delete`);
  const [, host, namespace, model, tag] = wanted as unknown as [string, string, string, string, string];
  return ollamaManifestPath(root, { host, namespace, model, tag });
}

/** An Ollama model: its manifest, then the blobs no other manifest names (as `ollama rm` does). */
async function deleteFromOllama(spec: ModelSpec, requested: string | undefined): Promise<DeleteResult> {
  const root = dirname(dirname(spec.files[0]!));
  const manifest = manifestFor(spec, root, requested);
  if (!existsSync(manifest)) throw new PullError(404, `model '${requested ?? spec.name}' not found (no manifest at ${manifest})`);
  const digests = digestsIn(manifest);
  await rm(manifest);
  for (const dir of [dirname(manifest), dirname(dirname(manifest)), dirname(dirname(dirname(manifest)))]) if (!(await removeIfEmpty(dir))) break;
  const stillUsed = new Set(allManifestPaths(root).flatMap(digestsIn));
  const blobsRemoved: string[] = [];
  for (const digest of new Set(digests)) {
    const blob = ollamaBlobPath(root, digest);
    if (!stillUsed.has(digest) && existsSync(blob)) {
      await rm(blob, { force: true });
      blobsRemoved.push(blob);
    }
  }
  return { removed: [manifest], blobsRemoved };
}

/**
 * Deletes a discovered model. What a pull writes — an HF cache snapshot, an Ollama manifest — goes
 * with the blobs nothing else uses. A model file placed by hand is refused (403) unless `force`.
 * `requestedName`, the name the user typed, picks the manifest when several list the same file.
 */
export async function deleteModel(spec: ModelSpec, options: { force?: boolean; requestedName?: string } = {}): Promise<DeleteResult> {
  if (spec.source === "hf-cache") return deleteFromHfCache(spec);
  if (spec.source === "ollama") return deleteFromOllama(spec, options.requestedName);
  if (!options.force) {
    throw new PullError(403, `${spec.name} is ${spec.files[0]}, a model Shimmy did not download (found in ${spec.source === "dir" || spec.source === "path" ? "a model directory or path" : spec.source}); it is left alone — delete it by hand, or use \`shimmy rm --force\``);
  }
  const removed: string[] = [];
  for (const path of spec.files) {
    await rm(path, { recursive: true, force: true });
    removed.push(path);
  }
  return { removed, blobsRemoved: [] };
}
