import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { scanDirectory } from "../src/discovery/sources/scan-dir.js";
import { STORIES_GGUF, STORIES_HF, tempDir } from "./helpers/paths.js";

const tmp = tempDir();
after(() => tmp.cleanup());

function scan(root: string): { found: { kind: string; path: string }[]; notes: string[] } {
  const notes: string[] = [];
  const found = scanDirectory(root, { source: "dir", sourcePrefix: "dir", maxDepth: 6, note: (m) => notes.push(m) });
  return { found: found.map(({ kind, path }) => ({ kind, path })), notes };
}

describe("directory scan", () => {
  it("does not descend into /proc, /sys or /dev, even through a symlink; symlinked model folders still count", () => {
    const elsewhere = join(tmp.path, "elsewhere");
    mkdirSync(join(elsewhere, "gguf-models"), { recursive: true });
    copyFileSync(STORIES_GGUF, join(elsewhere, "gguf-models", "story.gguf"));
    const root = join(tmp.path, "models");
    mkdirSync(root);
    symlinkSync(join(elsewhere, "gguf-models"), join(root, "linked-gguf"));
    symlinkSync(STORIES_HF, join(root, "linked-hf"));
    for (const system of ["/proc", "/sys", "/dev"]) symlinkSync(system, join(root, `sys-${system.slice(1)}`));
    symlinkSync("/proc/self", join(root, "self"));

    const { found, notes } = scan(root);
    assert.deepEqual(found.sort((a, b) => a.path.localeCompare(b.path)), [
      { kind: "gguf", path: join(root, "linked-gguf", "story.gguf") },
      { kind: "hf-folder", path: join(root, "linked-hf") },
    ]);
    for (const name of ["sys-proc", "sys-sys", "sys-dev", "self"]) {
      assert.ok(notes.includes(`skipped ${join(root, name)}: a system directory (/proc, /sys, /dev)`), `${name} skipped: ${notes.join("; ")}`);
    }
  });

  it("scans a folder inside /dev when asked to start there (e.g. models on /dev/shm)", { skip: !canWriteShm() }, () => {
    const shm = tempDirIn("/dev/shm");
    try {
      copyFileSync(STORIES_GGUF, join(shm.path, "story.gguf"));
      assert.deepEqual(scan(shm.path).found, [{ kind: "gguf", path: join(shm.path, "story.gguf") }]);
    } finally {
      shm.cleanup();
    }
  });
});

function canWriteShm(): boolean {
  try {
    tempDirIn("/dev/shm").cleanup();
    return true;
  } catch {
    return false;
  }
}

function tempDirIn(parent: string): { path: string; cleanup(): void } {
  const path = join(parent, `shimmy-scan-${process.pid}-${Date.now()}`);
  mkdirSync(path);
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}
