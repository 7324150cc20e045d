import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";

/** A file in a fake Hub repo: LFS files go through the CDN by sha256, small ones are served inline. */
interface RepoFile {
  bytes: Buffer;
  lfs: boolean;
}

interface FakeRepo {
  commit: string;
  gated: boolean;
  files: Map<string, RepoFile>;
}

export const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");
const gitBlobId = (bytes: Buffer): string => createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");

/** What a test may ask of the next download of a blob (by sha256 or git id). */
export interface BlobFault {
  /** Send this many bytes, then drop the connection (once). */
  dropAfter?: number;
  /** Send this many bytes, then hold the connection open (once): the client must give up itself. */
  stallAfter?: number;
  /** Serve every byte with the first one changed (always). */
  corrupt?: boolean;
}

export const GOOD_TOKEN = "hf_good_token";

/**
 * A local stand-in for the Hugging Face Hub (model info with siblings, resolve with HEAD headers
 * and a 302 to a CDN path, Range) and an Ollama v2 registry (manifests, blobs via a redirect),
 * as huggingface_hub and Ollama's client expect them. It records each request it gets.
 */
export class FakeHub {
  readonly requests: { method: string; path: string; range?: string; authorization?: string }[] = [];
  readonly faults = new Map<string, BlobFault>();
  private readonly repos = new Map<string, FakeRepo>();
  private readonly blobs = new Map<string, Buffer>();
  private readonly manifests = new Map<string, Buffer>();
  private readonly stalled = new Set<ServerResponse>();
  private server!: Server;
  url = "";

  async start(): Promise<this> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const res of this.stalled) res.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** A repo; values are paths on disk or contents. `.gguf` and `.safetensors` files are LFS files. */
  addRepo(repo: string, files: Record<string, string | Buffer>, options: { gated?: boolean } = {}): FakeRepo {
    const commit = createHash("sha1").update(repo).digest("hex");
    const entry: FakeRepo = { commit, gated: options.gated ?? false, files: new Map() };
    for (const [name, source] of Object.entries(files)) {
      const bytes = typeof source === "string" ? readFileSync(source) : source;
      const lfs = /\.(gguf|safetensors)$/.test(name);
      entry.files.set(name, { bytes, lfs });
      this.blobs.set(lfs ? sha256(bytes) : gitBlobId(bytes), bytes);
    }
    this.repos.set(repo, entry);
    return entry;
  }

  /** The blob id the Hub gives a repo file (its etag). */
  etagOf(repo: string, file: string): string {
    const f = this.repos.get(repo)!.files.get(file)!;
    return f.lfs ? sha256(f.bytes) : gitBlobId(f.bytes);
  }

  /** An Ollama model `namespace/model:tag`; layers are `{mediaType suffix, bytes}`. Returns the manifest's bytes. */
  addOllamaModel(name: string, layers: { mediaType: string; bytes: Buffer }[]): Buffer {
    const layer = (mediaType: string, bytes: Buffer) => {
      const digest = `sha256:${sha256(bytes)}`;
      this.blobs.set(sha256(bytes), bytes);
      return { mediaType, digest, size: bytes.length };
    };
    const config = layer("application/vnd.docker.container.image.v1+json", Buffer.from(JSON.stringify({ model_format: "gguf", model_family: "llama" })));
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.docker.distribution.manifest.v2+json", config, layers: layers.map((l) => layer(`application/vnd.ollama.image.${l.mediaType}`, l.bytes)) }));
    this.manifests.set(name, manifest);
    return manifest;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = decodeURIComponent(new URL(req.url!, "http://x").pathname);
    this.requests.push({ method: req.method!, path, range: req.headers.range, authorization: req.headers.authorization });
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => void res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(path);
    if (m) {
      const repo = this.visibleRepo(m[1]!, req, res);
      if (repo) json(200, { id: m[1], sha: repo.commit, siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })) });
      return;
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (m) {
      const repo = this.visibleRepo(m[1]!, req, res);
      if (!repo) return;
      const file = repo.files.get(m[3]!);
      if (!file) return json(404, { error: "Entry not found" }, { "x-error-code": "EntryNotFound" });
      if (file.lfs) {
        const sha = sha256(file.bytes);
        // The Hub's own answer carries the headers; the CDN it redirects to does not.
        res.writeHead(302, { location: `/cdn/${sha}`, "x-repo-commit": repo.commit, "x-linked-etag": `"${sha}"`, "x-linked-size": String(file.bytes.length), etag: `W/"not-the-blob"` }).end();
        return;
      }
      return this.serveBlob(gitBlobId(file.bytes), req, res, { "x-repo-commit": repo.commit, etag: `"${gitBlobId(file.bytes)}"` });
    }
    m = /^\/cdn\/([0-9a-f]+)$/.exec(path);
    if (m) return this.serveBlob(m[1]!, req, res);
    m = /^\/v2\/([^/]+)\/([^/]+)\/manifests\/([^/]+)$/.exec(path);
    if (m) {
      const manifest = this.manifests.get(`${m[1]}/${m[2]}:${m[3]}`);
      if (!manifest) return json(404, { errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] });
      res.writeHead(200, { "content-type": "application/vnd.docker.distribution.manifest.v2+json", "content-length": manifest.length }).end(manifest);
      return;
    }
    m = /^\/v2\/[^/]+\/[^/]+\/blobs\/sha256:([0-9a-f]{64})$/.exec(path);
    if (m) return void res.writeHead(307, { location: `/cdn/${m[1]}` }).end();
    json(404, { error: "not found" });
  }

  /** The repo, or an answer as the Hub gives it: 401 for unknown repos and for gated ones without a good token. */
  private visibleRepo(name: string, req: IncomingMessage, res: ServerResponse): FakeRepo | undefined {
    const repo = this.repos.get(name);
    if (!repo) return void res.writeHead(401, { "x-error-code": "RepoNotFound", "content-type": "application/json" }).end('{"error":"Repository not found"}');
    if (repo.gated && req.headers.authorization !== `Bearer ${GOOD_TOKEN}`) {
      return void res.writeHead(401, { "x-error-code": "GatedRepo", "content-type": "application/json" }).end('{"error":"Access to this model is restricted"}');
    }
    return repo;
  }

  /** A blob with Range support and the faults a test asked for. */
  private serveBlob(id: string, req: IncomingMessage, res: ServerResponse, headers: Record<string, string> = {}): void {
    let bytes = this.blobs.get(id);
    if (!bytes) return void res.writeHead(404).end();
    const fault = this.faults.get(id) ?? {};
    if (fault.corrupt) bytes = Buffer.concat([Buffer.from([bytes[0]! ^ 0xff]), bytes.subarray(1)]);
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    const start = range ? Number(range[1]) : 0;
    if (start >= bytes.length && range) return void res.writeHead(416, { "content-range": `bytes */${bytes.length}` }).end();
    const body = bytes.subarray(start);
    res.writeHead(range ? 206 : 200, { ...headers, "content-length": body.length, "accept-ranges": "bytes", ...(range ? { "content-range": `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}) });
    if (req.method === "HEAD") return void res.end();
    const { dropAfter, stallAfter } = fault;
    if (dropAfter === undefined && stallAfter === undefined) return void res.end(body);
    // A fault of this kind happens once; the next request is served whole.
    this.faults.set(id, { corrupt: fault.corrupt });
    res.write(body.subarray(0, dropAfter ?? stallAfter));
    if (stallAfter !== undefined) this.stalled.add(res);
    else setTimeout(() => res.destroy(), 20);
  }
}
