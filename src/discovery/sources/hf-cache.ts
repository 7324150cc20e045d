import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Candidate, NoteSink, SearchLocation } from "../types.js";
import { scanDirectory } from "./scan-dir.js";

/** The hub cache directory the way huggingface_hub resolves it. */
export function hfCacheRoot(env: NodeJS.ProcessEnv, home: string): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HF_HOME) return join(env.HF_HOME, "hub");
  return join(home, ".cache", "huggingface", "hub");
}

/** refs/main names the current snapshot; without it, the most recently modified snapshot wins. */
function currentSnapshot(repoDir: string, note: NoteSink): string | undefined {
  const snapshots = join(repoDir, "snapshots");
  const ref = join(repoDir, "refs", "main");
  if (existsSync(ref)) {
    const rev = readFileSync(ref, "utf8").trim();
    const dir = join(snapshots, rev);
    if (existsSync(dir)) return dir;
    note(`${repoDir}: refs/main points to missing snapshot ${rev}`);
  }
  let best: { dir: string; mtime: number } | undefined;
  try {
    for (const rev of readdirSync(snapshots)) {
      const dir = join(snapshots, rev);
      const mtime = statSync(dir).mtimeMs;
      if (!best || mtime > best.mtime) best = { dir, mtime };
    }
  } catch {
    return undefined;
  }
  return best?.dir;
}

export function scanHfCache(root: string, maxDepth: number, note: NoteSink): { candidates: Candidate[]; location: SearchLocation } {
  const location: SearchLocation = { source: "hf-cache", path: root, exists: existsSync(root) };
  const candidates: Candidate[] = [];
  if (!location.exists) return { candidates, location };
  let repos: string[];
  try {
    repos = readdirSync(root).filter((d) => d.startsWith("models--"));
  } catch (e) {
    note(`skipped ${root}: ${(e as NodeJS.ErrnoException).code}`);
    location.note = "unreadable";
    return { candidates, location };
  }
  for (const repoDirName of repos) {
    const [org, ...rest] = repoDirName.slice("models--".length).split("--");
    const repoId = rest.length > 0 ? `${org}/${rest.join("--")}` : org!;
    const snapshot = currentSnapshot(join(root, repoDirName), note);
    if (!snapshot) continue;
    const found = scanDirectory(snapshot, { source: "hf-cache", sourcePrefix: "hf", maxDepth, note });
    const repoName = repoId.toLowerCase();
    for (const c of found) {
      const atRoot = c.kind === "hf-folder" && c.path === snapshot;
      c.nameHint = found.length === 1 || atRoot ? repoName : `${repoName}/${c.nameHint}`;
      c.aliases = found.length === 1 ? [repoId] : [];
      candidates.push(c);
    }
  }
  return { candidates, location };
}
