import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** node-llama-cpp's package folder, or undefined when it cannot be resolved. */
export function nodeLlamaCppRoot(): string | undefined {
  try {
    // Its entry point is dist/index.js.
    return join(dirname(fileURLToPath(import.meta.resolve("node-llama-cpp"))), "..");
  } catch {
    return undefined;
  }
}

/** Where node-llama-cpp 3.21.1 keeps builds made on this machine (one folder per build). */
export function localBuildsDir(root: string): string {
  return join(root, "llama", "localBuilds");
}
