import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NATIVE_CMAKE_OPTIONS } from "./llama.js";

/** node-llama-cpp's package folder, or undefined when it cannot be resolved. */
export function nodeLlamaCppRoot(): string | undefined {
  try {
    // Its entry point is dist/index.js.
    return join(dirname(fileURLToPath(import.meta.resolve("node-llama-cpp"))), "..");
  } catch {
    return undefined;
  }
}

/**
 * Whether `shimmy build-native` left a finished build that `getRuntime({ native: true })` will
 * find, so that Shimmy uses it without a flag. Reads node-llama-cpp 3.21.1's layout:
 * llama/localBuilds/<name>/buildDone.status and Release/_nlcBuildMetadata.json with the CMake
 * options it was built with. A reinstall of node_modules removes the build, and with it this.
 */
export function nativeBuildExists(root = nodeLlamaCppRoot()): boolean {
  if (!root) return false;
  const builds = join(root, "llama", "localBuilds");
  if (!existsSync(builds)) return false;
  for (const name of readdirSync(builds)) {
    const dir = join(builds, name);
    if (!existsSync(join(dir, "buildDone.status"))) continue;
    try {
      const options = (JSON.parse(readFileSync(join(dir, "Release", "_nlcBuildMetadata.json"), "utf8")) as { buildOptions?: { gpu?: unknown; customCmakeOptions?: Record<string, string> } }).buildOptions;
      const cmake = options?.customCmakeOptions ?? {};
      const same = Object.keys(cmake).length === Object.keys(NATIVE_CMAKE_OPTIONS).length && Object.entries(NATIVE_CMAKE_OPTIONS).every(([k, v]) => cmake[k] === v);
      if (options?.gpu === false && same) return true;
    } catch {
      // An unreadable or partial build is not one to use.
    }
  }
  return false;
}

/**
 * Whether a GPU that node-llama-cpp's prebuilt binaries could use may be present: on Linux, the
 * device nodes CUDA, ROCm and Vulkan drivers expose; elsewhere (Metal, Windows) assumed so.
 */
export function gpuMayBeAvailable(): boolean {
  if (process.platform !== "linux") return true;
  return ["/dev/nvidia0", "/dev/kfd", "/dev/dri"].some((path) => existsSync(path));
}
