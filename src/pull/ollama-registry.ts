import { PullError } from "./errors.js";
import { type HttpOptions, fetchRetrying } from "./http.js";
import { OLLAMA_DEFAULT_HOST, type OllamaRef } from "./refs.js";

export interface OllamaLayer {
  mediaType: string;
  digest: string;
  size: number;
}

export interface OllamaManifest {
  schemaVersion?: number;
  mediaType?: string;
  config?: OllamaLayer;
  layers: OllamaLayer[];
}

export const MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json";
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/**
 * The registry's base URL: `--registry`, else for Ollama's own host $SHIMMY_OLLAMA_REGISTRY or
 * https://registry.ollama.ai, else https://<host> from the name.
 */
export function registryBase(ref: OllamaRef, env: NodeJS.ProcessEnv, override?: string): string {
  const base = override || (ref.host === OLLAMA_DEFAULT_HOST ? env.SHIMMY_OLLAMA_REGISTRY || `https://${OLLAMA_DEFAULT_HOST}` : `https://${ref.host}`);
  return base.replace(/\/+$/, "");
}

function registryError(res: Response, ref: OllamaRef, base: string, what: string): PullError {
  const name = `${ref.namespace}/${ref.model}:${ref.tag}`;
  if (res.status === 404) return new PullError(404, `${what}: ${name} was not found in the registry ${base}`);
  if (res.status === 401 || res.status === 403) return new PullError(res.status, `${what}: the registry ${base} refused access to ${name} (HTTP ${res.status})`);
  return new PullError(502, `${what}: the registry ${base} answered HTTP ${res.status}`);
}

function isLayer(value: unknown): value is OllamaLayer {
  const l = value as OllamaLayer;
  return typeof l === "object" && l !== null && typeof l.mediaType === "string" && typeof l.digest === "string" && DIGEST.test(l.digest) && Number.isSafeInteger(l.size) && l.size >= 0;
}

/** `GET /v2/{namespace}/{model}/manifests/{tag}`: the manifest, checked, and its bytes as stored. */
export async function fetchManifest(ref: OllamaRef, base: string, options: HttpOptions): Promise<{ manifest: OllamaManifest; bytes: Buffer }> {
  const url = `${base}/v2/${ref.namespace}/${ref.model}/manifests/${ref.tag}`;
  const what = "pulling manifest";
  const res = await fetchRetrying(url, { headers: { accept: MANIFEST_MEDIA_TYPE } }, what, options);
  if (res.status !== 200) {
    await res.body?.cancel();
    throw registryError(res, ref, base, what);
  }
  const bytes = Buffer.from(await res.arrayBuffer());
  let manifest: OllamaManifest;
  try {
    manifest = JSON.parse(bytes.toString("utf8"));
  } catch (e) {
    throw new PullError(502, `${what}: the manifest is not JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(manifest.layers) || !manifest.layers.every(isLayer) || (manifest.config !== undefined && !isLayer(manifest.config))) {
    throw new PullError(502, `${what}: the manifest's layers are not {mediaType, digest: sha256:…, size}`);
  }
  return { manifest, bytes };
}

/** Every blob a manifest names: its layers and its config. */
export function manifestDigests(manifest: OllamaManifest): OllamaLayer[] {
  return manifest.config ? [...manifest.layers, manifest.config] : manifest.layers;
}

export function blobUrl(ref: OllamaRef, base: string, digest: string): string {
  return `${base}/v2/${ref.namespace}/${ref.model}/blobs/${digest}`;
}

export function blobError(ref: OllamaRef, base: string, digest: string): (res: Response) => PullError {
  return (res) => registryError(res, ref, base, `pulling ${digest}`);
}
