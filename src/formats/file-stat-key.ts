import { statSync } from "node:fs";

/** What changes when a file changes: its path, size, mtime and inode. Throws when it cannot be read. */
export function fileStatKey(path: string): string {
  const st = statSync(path);
  return `${path}\0${st.size}\0${st.mtimeMs}\0${st.ino}`;
}

/** fileStatKey, or `path\0-` for a file that is gone or unreadable (a key that still compares). */
export function fileStatKeyOrGone(path: string): string {
  try {
    return fileStatKey(path);
  } catch {
    return `${path}\0-`;
  }
}
