import { existsSync, statSync } from "node:fs";
import { hfCacheRoot } from "../discovery/sources/hf-cache.js";
import { ollamaRoots } from "../discovery/sources/ollama.js";
import { type BlobDownload, type ExpectedDigest, downloadVerified } from "./download.js";
import { PullError } from "./errors.js";
import { writeFileAtomic } from "./atomic-file.js";
import { hfBlobPath, hfRepoDir, hfSnapshotPath, linkSnapshotFile, writeRef } from "./hf-cache.js";
import { type HubClient, type HubFile, hubError, hubHeaders, hubSettings, listRepoFiles, resolveFile } from "./hf-hub.js";
import { selectHfFiles } from "./hf-select.js";
import type { RetryPolicy } from "./http.js";
import { blobError, blobUrl, fetchManifest, manifestDigests, registryBase } from "./ollama-registry.js";
import { ollamaBlobPath, ollamaManifestPath } from "./ollama-store.js";
import { type ProgressSink, layerStatus } from "./progress.js";
import { type HfRef, type OllamaRef, type PullRef, parsePullRef } from "./refs.js";

export interface PullSettings {
  env: NodeJS.ProcessEnv;
  home: string;
  /** The Ollama registry's base URL (`--registry`), for mirrors. */
  registry?: string;
  signal?: AbortSignal;
  retry?: RetryPolicy;
}

export interface PullResult {
  ref: PullRef;
  /** Where the model now is, as discovery lists it: the GGUF (first part) or the SafeTensors folder. */
  modelPath: string;
  /** Every file the pull installed or found already there. */
  files: string[];
}

/**
 * A pull whose remote side is already known (listing, file choice, manifest): everything that
 * can be refused with a status has been, so a server can open its stream and `run` it.
 */
export interface PullPlan {
  ref: PullRef;
  run(onProgress: ProgressSink): Promise<PullResult>;
}

/** Progress for one file: at most every 100 ms, and always its last report. */
function throttled(onProgress: ProgressSink, status: string, digest: string | undefined): (completed: number, total: number | undefined) => void {
  let last = 0;
  return (completed, total) => {
    const now = performance.now();
    if (now - last < 100 && completed !== total) return;
    last = now;
    onProgress({ status, ...(digest ? { digest } : {}), ...(total !== undefined ? { total } : {}), completed });
  };
}

/** Downloads unless the blob is already there; either way reports the file's progress. */
async function ensureBlob(download: Omit<BlobDownload, "onProgress">, digest: string | undefined, id: string, onProgress: ProgressSink, settings: PullSettings): Promise<void> {
  const report = throttled(onProgress, layerStatus(id), digest);
  if (existsSync(download.dest)) {
    const size = statSync(download.dest).size;
    report(size, size);
    return;
  }
  await downloadVerified({ ...download, onProgress: report }, settings);
}

function expectedFromEtag(etag: string): ExpectedDigest | undefined {
  if (/^[0-9a-f]{64}$/i.test(etag)) return { algorithm: "sha256", hex: etag };
  if (/^[0-9a-f]{40}$/i.test(etag)) return { algorithm: "git-blob-sha1", hex: etag };
  return undefined;
}

async function planHf(ref: HfRef, settings: PullSettings): Promise<PullPlan> {
  const hub: HubClient = { ...hubSettings(settings.env, settings.home), signal: settings.signal, retry: settings.retry };
  const listing = await listRepoFiles(hub, ref.repo, ref.revision);
  const selection = selectHfFiles(ref, listing.files);
  const resolved: HubFile[] = [];
  for (const file of selection.files) resolved.push(await resolveFile(hub, ref.repo, ref.revision, file, listing.commit));
  const commit = resolved[0]!.commit;
  const repoDir = hfRepoDir(hfCacheRoot(settings.env, settings.home), ref.repo);
  return {
    ref,
    async run(onProgress) {
      onProgress({ status: "pulling manifest" });
      for (const f of resolved) {
        const expected = expectedFromEtag(f.etag);
        const download = { url: f.url, headers: hubHeaders(hub), dest: hfBlobPath(repoDir, f.etag), size: f.size, expected, label: `${ref.repo}/${f.file}`, describeStatus: (res: Response) => hubError(res, hub, ref.repo, f.file) };
        await ensureBlob(download, expected?.algorithm === "sha256" ? `sha256:${f.etag}` : undefined, f.etag, onProgress, settings);
      }
      onProgress({ status: "verifying sha256 digest" });
      onProgress({ status: "writing manifest" });
      // Links only once every blob is in place: discovery never sees half a model.
      const files: string[] = [];
      for (const f of resolved) files.push(await linkSnapshotFile(repoDir, commit, f.file, f.etag));
      await writeRef(repoDir, ref.revision, commit);
      onProgress({ status: "success" });
      const modelPath = selection.format === "gguf" ? files[0]! : hfSnapshotPath(repoDir, commit, "");
      return { ref, modelPath: modelPath.replace(/\/$/, ""), files };
    },
  };
}

const MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model";

async function planOllama(ref: OllamaRef, settings: PullSettings): Promise<PullPlan> {
  const base = registryBase(ref, settings.env, settings.registry);
  const { manifest, bytes } = await fetchManifest(ref, base, settings);
  const modelLayer = manifest.layers.find((l) => l.mediaType === MODEL_MEDIA_TYPE);
  if (!modelLayer) throw new PullError(400, `${ref.namespace}/${ref.model}:${ref.tag} has no GGUF model layer (${MODEL_MEDIA_TYPE}); Shimmy serves GGUF models from Ollama registries`);
  const root = ollamaRoots(settings.env, settings.home)[0]!;
  const layers = [...new Map(manifestDigests(manifest).map((l) => [l.digest, l])).values()];
  return {
    ref,
    async run(onProgress) {
      onProgress({ status: "pulling manifest" });
      for (const layer of layers) {
        const download = { url: blobUrl(ref, base, layer.digest), dest: ollamaBlobPath(root, layer.digest), size: layer.size, expected: { algorithm: "sha256" as const, hex: layer.digest.slice("sha256:".length) }, label: `layer ${layer.digest}`, describeStatus: blobError(ref, base, layer.digest) };
        await ensureBlob(download, layer.digest, layer.digest, onProgress, settings);
      }
      onProgress({ status: "verifying sha256 digest" });
      onProgress({ status: "writing manifest" });
      const manifestPath = ollamaManifestPath(root, ref);
      await writeFileAtomic(manifestPath, bytes);
      onProgress({ status: "success" });
      return { ref, modelPath: ollamaBlobPath(root, modelLayer.digest), files: [manifestPath, ...layers.map((l) => ollamaBlobPath(root, l.digest))] };
    },
  };
}

/** Parses the reference and asks the remote side what to download (no file is written yet). */
export async function planPull(reference: string, settings: PullSettings): Promise<PullPlan> {
  const ref = parsePullRef(reference);
  return ref.kind === "hf" ? planHf(ref, settings) : planOllama(ref, settings);
}
