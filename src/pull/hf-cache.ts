import { mkdir, rename, rm, symlink } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { writeFileAtomic } from "./atomic-file.js";

/** The Hugging Face cache's layout, as huggingface_hub writes it (file_download.py). */
export function hfRepoDir(cacheRoot: string, repo: string): string {
  return join(cacheRoot, `models--${repo.replaceAll("/", "--")}`);
}

export function hfBlobPath(repoDir: string, etag: string): string {
  return join(repoDir, "blobs", etag);
}

export function hfSnapshotPath(repoDir: string, commit: string, file: string): string {
  return join(repoDir, "snapshots", commit, ...file.split("/"));
}

/** `snapshots/<commit>/<file>` → `../../blobs/<etag>`, a relative link (replaced atomically). */
export async function linkSnapshotFile(repoDir: string, commit: string, file: string, etag: string): Promise<string> {
  const link = hfSnapshotPath(repoDir, commit, file);
  await mkdir(dirname(link), { recursive: true });
  const temporary = `${link}.${process.pid}.tmp`;
  await rm(temporary, { force: true });
  await symlink(relative(dirname(link), hfBlobPath(repoDir, etag)), temporary);
  await rename(temporary, link);
  return link;
}

/** `refs/<revision>` holds the commit a branch name resolved to. */
export async function writeRef(repoDir: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  await writeFileAtomic(join(repoDir, "refs", ...revision.split("/")), commit);
}
