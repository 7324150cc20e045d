import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PullError } from "./errors.js";
import { type HttpOptions, fetchJson, fetchRetrying } from "./http.js";

/** Where the Hub is and who asks: HF_ENDPOINT, HF_TOKEN (or the token `huggingface-cli login` saved). */
export interface HubClient extends HttpOptions {
  endpoint: string;
  token?: string;
}

export function hubSettings(env: NodeJS.ProcessEnv, home: string): { endpoint: string; token?: string } {
  const endpoint = (env.HF_ENDPOINT || "https://huggingface.co").replace(/\/+$/, "");
  const tokenFile = env.HF_TOKEN_PATH || join(env.HF_HOME || join(home, ".cache", "huggingface"), "token");
  const saved = existsSync(tokenFile) ? readFileSync(tokenFile, "utf8").trim() : "";
  const token = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || saved || undefined;
  return { endpoint, token };
}

export function hubHeaders(hub: HubClient): Record<string, string> {
  return hub.token ? { authorization: `Bearer ${hub.token}` } : {};
}

/** The Hub's refusal in words a user can act on (gated repos, missing tokens, typos). */
export function hubError(res: Response, hub: HubClient, repo: string, what: string): PullError {
  const code = res.headers.get("x-error-code");
  const page = `${hub.endpoint}/${repo}`;
  if (code === "RepoNotFound" || (res.status === 404 && code !== "EntryNotFound" && code !== "RevisionNotFound")) {
    return new PullError(404, `${repo} was not found on ${hub.endpoint}${hub.token ? "" : " (a private repo needs HF_TOKEN)"}`);
  }
  if (res.status === 404) return new PullError(404, `${what} was not found in ${repo}`);
  if (res.status === 401) {
    return new PullError(401, `${repo} is gated or private: accept its terms at ${page} and ${hub.token ? "check that HF_TOKEN belongs to that account (the Hub refused it)" : "set HF_TOKEN to an access token of that account"}`);
  }
  if (res.status === 403) return new PullError(403, `${repo} is gated and this account has no access yet: request it at ${page} (HF_TOKEN must belong to the account that was granted access)`);
  return new PullError(502, `${what}: the Hub answered HTTP ${res.status}`);
}

const encodePath = (file: string): string => file.split("/").map(encodeURIComponent).join("/");

/** The repo's files at a revision, and the commit it resolved to (`GET /api/models/{repo}/revision/{rev}`). */
export async function listRepoFiles(hub: HubClient, repo: string, revision: string): Promise<{ commit?: string; files: string[] }> {
  const url = `${hub.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
  const info = (await fetchJson(url, hubHeaders(hub), `listing ${repo}`, hub, (res) => hubError(res, hub, repo, `revision ${revision}`))) as { sha?: unknown; siblings?: unknown };
  if (!Array.isArray(info.siblings)) throw new PullError(502, `listing ${repo}: the Hub's answer has no file list (siblings)`);
  const files = info.siblings.map((s: { rfilename?: unknown }) => s.rfilename).filter((f): f is string => typeof f === "string");
  return { commit: typeof info.sha === "string" ? info.sha : undefined, files };
}

/** One file as the Hub's resolve endpoint describes it: what to name the blob, its size, its commit. */
export interface HubFile {
  file: string;
  url: string;
  commit: string;
  /** The blob's name in the cache: the LFS sha256, or the git blob id for small files. */
  etag: string;
  size?: number;
}

/** huggingface_hub's normalisation: drop a weak marker and the quotes. */
function normalizeEtag(raw: string | null): string | undefined {
  return raw?.replace(/^W\//, "").replace(/"/g, "") || undefined;
}

/**
 * HEAD `{endpoint}/{repo}/resolve/{revision}/{file}` without following redirects to the CDN: the
 * Hub puts X-Repo-Commit, X-Linked-Etag and X-Linked-Size on its own answer (a 302 for LFS files).
 * Relative redirects (a renamed repo) are followed, as huggingface_hub does.
 */
export async function resolveFile(hub: HubClient, repo: string, revision: string, file: string, fallbackCommit?: string): Promise<HubFile> {
  const url = `${hub.endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${encodePath(file)}`;
  let target = url;
  for (let hop = 0; hop < 5; hop++) {
    const res = await fetchRetrying(target, { method: "HEAD", headers: { ...hubHeaders(hub), "accept-encoding": "identity" }, redirect: "manual" }, `looking up ${file}`, hub);
    const location = res.headers.get("location");
    const commit = res.headers.get("x-repo-commit") ?? fallbackCommit;
    if (res.status >= 300 && res.status < 400 && location && !res.headers.get("x-repo-commit") && location.startsWith("/")) {
      target = new URL(location, target).toString();
      continue;
    }
    if (res.status >= 400) throw hubError(res, hub, repo, file);
    const etag = normalizeEtag(res.headers.get("x-linked-etag") ?? res.headers.get("etag"));
    if (!etag || !commit) throw new PullError(502, `${repo}/${file}: the Hub's answer lacks ${etag ? "X-Repo-Commit" : "an ETag"}; is HF_ENDPOINT a Hub?`);
    const sizeHeader = res.headers.get("x-linked-size") ?? (res.status === 200 ? res.headers.get("content-length") : null);
    return { file, url: target, commit, etag, size: sizeHeader === null ? undefined : Number(sizeHeader) };
  }
  throw new PullError(502, `${repo}/${file}: too many redirects`);
}
