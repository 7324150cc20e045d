import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { LlamaRuntimeOptions } from "../llama.js";
import { nodeLlamaCppRoot } from "../native-build.js";

let version: string | undefined;

function nodeLlamaCppVersion(root: string | undefined): string {
  if (version !== undefined) return version;
  try {
    version = (JSON.parse(readFileSync(join(root!, "package.json"), "utf8")) as { version?: string }).version ?? "unknown";
  } catch {
    version = "unknown";
  }
  return version;
}

/** When `shimmy build-native` last finished a build (a rebuild is a new binary). */
function nativeBuildStamp(root: string | undefined): number {
  let latest = 0;
  try {
    const builds = join(root!, "llama", "localBuilds");
    for (const name of readdirSync(builds)) {
      try {
        latest = Math.max(latest, statSync(join(builds, name, "buildDone.status")).mtimeMs);
      } catch {
        // not a finished build
      }
    }
  } catch {
    // no builds
  }
  return latest;
}

/**
 * The llama.cpp binary a runtime will load, as far as it decides a probe's verdict: a new
 * node-llama-cpp or a rebuilt native backend may fix or break a file.
 */
export function runtimeIdentity(options: LlamaRuntimeOptions): string {
  const root = nodeLlamaCppRoot();
  const build = options.native ? `native@${nativeBuildStamp(root)}` : "prebuilt";
  return `node-llama-cpp@${nodeLlamaCppVersion(root)} ${build} gpu=${options.gpu}`;
}
