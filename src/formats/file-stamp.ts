import { statSync } from "node:fs";

/** What changes when a file changes: its path, size, mtime and inode. Throws when it cannot be read. */
export function fileStamp(path: string): string {
  const st = statSync(path);
  return `${path}\0${st.size}\0${st.mtimeMs}\0${st.ino}`;
}

/** fileStamp, or `path\0-` for a file that is gone or unreadable (a stamp that still compares). */
export function fileStampOrGone(path: string): string {
  try {
    return fileStamp(path);
  } catch {
    return `${path}\0-`;
  }
}
