import { createHash } from "node:crypto";
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { release } from "node:os";
import { dirname, join } from "node:path";
import { localBuildsDir, nodeLlamaCppRoot } from "./node-llama-cpp-files.js";

/**
 * node-llama-cpp's prebuilt binary for x64 Linux and Windows ships one CPU library per instruction
 * set (libggml-cpu-haswell.so, …-zen4.so, …) and llama.cpp loads the one whose feature list scores
 * highest on this CPU — with no override. That pick is not always the fastest: on the AMD EPYC
 * (Zen 4) dev VM, zen4 decoded 8 streams at once 4–9% slower than cooperlake (four side-by-side
 * runs; README, Benchmarks).
 * `shimmy tune-cpu` measures the candidates and keeps the fastest as a node-llama-cpp "local
 * build": a folder in its llama/localBuilds holding the prebuilt files with only that CPU library,
 * named for a custom CMake option (SHIMMY_CPU_VARIANT=<name>) so that getLlama finds it with
 * `cmakeOptions: { SHIMMY_CPU_VARIANT: name }`. Nothing is compiled; a reinstall of node_modules
 * removes the folder, and with it the choice.
 */
export const CPU_VARIANT_OPTION = "SHIMMY_CPU_VARIANT";

/** Written into the chosen folder only; candidates measured without it are not a choice. */
const CHOICE_FILE = "shimmy-cpu-variant.json";

const CPU_LIBRARY = /^(?:lib)?ggml-cpu-([a-z0-9_]+)\.(?:so|dll)$/;

interface PrebuiltCpuLibraries {
  /** The prebuilt binary's folder (llama-addon.node and its libraries). */
  dir: string;
  /** Instruction-set names, e.g. "haswell", "zen4", in the folder's order. */
  variants: string[];
  platform: "linux" | "win";
}

/** The prebuilt CPU binary's folder and its CPU libraries, where this platform has several. */
export function prebuiltCpuLibraries(root = nodeLlamaCppRoot()): PrebuiltCpuLibraries | undefined {
  const platform = process.platform === "linux" ? "linux" : process.platform === "win32" ? "win" : undefined;
  if (!root || !platform || process.arch !== "x64") return undefined;
  const name = `${platform}-${process.arch}`;
  let dir: string;
  try {
    // The package exports only its entry point, dist/index.js.
    dir = join(dirname(createRequire(join(root, "package.json")).resolve(`@node-llama-cpp/${name}`)), "..", "bins", name);
  } catch {
    return undefined;
  }
  if (!existsSync(dir)) return undefined;
  const variants = readdirSync(dir).flatMap((f) => CPU_LIBRARY.exec(f)?.[1] ?? []);
  return variants.length > 1 ? { dir, variants, platform } : undefined;
}

/**
 * The local-build folder node-llama-cpp 3.21.1 looks in for these CMake options: platform-arch
 * and the base-36 SHA-1 of "KEY=value" (its getBuildFolderNameForBuildOptions, hashString).
 */
function variantFolder(variant: string, root: string, platform: string): string {
  const digest = createHash("sha1").update(`${encodeURIComponent(CPU_VARIANT_OPTION)}=${encodeURIComponent(variant)}`).digest();
  return join(localBuildsDir(root), `${platform}-${process.arch}-${Array.from(digest, (b) => b.toString(36)).join("")}`);
}

/** What node-llama-cpp calls this system; a build made elsewhere is test-loaded first (slower). */
function platformInfo(platform: string): { name: string; version: string } {
  if (platform !== "linux") return { name: "Windows", version: release() };
  for (const path of ["/etc/os-release", "/usr/lib/os-release"]) {
    try {
      const fields = new Map(
        readFileSync(path, "utf8")
          .split("\n")
          .flatMap((line) => {
            const eq = line.indexOf("=");
            return eq < 1 ? [] : [[line.slice(0, eq).toLowerCase(), line.slice(eq + 1).replace(/^"(.*)"$/, "$1")] as const];
          }),
      );
      return { name: fields.get("name") ?? "", version: fields.get("version_id") ?? fields.get("version") ?? "" };
    } catch {
      // Try the next location.
    }
  }
  return { name: "", version: "" };
}

/**
 * Makes `variant` loadable as a local build (idempotent). Files are hard links to the prebuilt
 * ones where the file system allows (no extra space), copies otherwise; they are gathered in a
 * staging folder, and the build counts as done only once moved into place.
 */
export function installCpuVariant(variant: string, root = nodeLlamaCppRoot()): string {
  const prebuilt = prebuiltCpuLibraries(root);
  if (!root || !prebuilt) throw new Error("node-llama-cpp's prebuilt binary has no CPU variants to choose from on this platform");
  if (!prebuilt.variants.includes(variant)) throw new Error(`no CPU library "${variant}" in ${prebuilt.dir} (there are: ${prebuilt.variants.join(", ")})`);
  const folder = variantFolder(variant, root, prebuilt.platform);
  if (existsSync(join(folder, "buildDone.status"))) return folder;
  const staging = `${folder}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(join(staging, "Release"), { recursive: true });
  for (const file of readdirSync(prebuilt.dir)) {
    const library = CPU_LIBRARY.exec(file)?.[1];
    if ((library !== undefined && library !== variant) || file === "_nlcBuildMetadata.json") continue;
    try {
      linkSync(join(prebuilt.dir, file), join(staging, "Release", file));
    } catch {
      copyFileSync(join(prebuilt.dir, file), join(staging, "Release", file));
    }
  }
  const metadata = JSON.parse(readFileSync(join(prebuilt.dir, "_nlcBuildMetadata.json"), "utf8")) as { buildOptions: Record<string, unknown> };
  metadata.buildOptions = { ...metadata.buildOptions, customCmakeOptions: { [CPU_VARIANT_OPTION]: variant }, platformInfo: platformInfo(prebuilt.platform), gpu: false };
  writeFileSync(join(staging, "Release", "_nlcBuildMetadata.json"), JSON.stringify(metadata));
  rmSync(folder, { recursive: true, force: true });
  try {
    renameSync(staging, folder);
  } catch (e) {
    // Another Shimmy process moved the same complete folder in meanwhile: theirs is as good.
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(join(folder, "Release", "_nlcBuildMetadata.json"))) throw e;
  }
  // Last, as node-llama-cpp's own builds do: without it the folder is not a build.
  writeFileSync(join(folder, "buildDone.status"), "");
  return folder;
}

/** Folders Shimmy made for CPU variants, by variant, with whether each is the chosen one. */
function variantFolders(root: string): { variant: string; folder: string; chosen: boolean }[] {
  const builds = localBuildsDir(root);
  if (!existsSync(builds)) return [];
  return readdirSync(builds).flatMap((name) => {
    const folder = join(builds, name);
    try {
      const options = (JSON.parse(readFileSync(join(folder, "Release", "_nlcBuildMetadata.json"), "utf8")) as { buildOptions?: { customCmakeOptions?: Record<string, string> } }).buildOptions;
      const variant = options?.customCmakeOptions?.[CPU_VARIANT_OPTION];
      if (typeof variant !== "string" || !existsSync(join(folder, "buildDone.status"))) return [];
      return [{ variant, folder, chosen: existsSync(join(folder, CHOICE_FILE)) }];
    } catch {
      return [];
    }
  });
}

/** Variants that have a folder (the chosen one, and candidates being measured). */
export function installedCpuVariants(root = nodeLlamaCppRoot()): string[] {
  return root ? variantFolders(root).map((f) => f.variant) : [];
}

/** The CPU variant `shimmy tune-cpu` chose, when its folder is still there. */
export function chosenCpuVariant(root = nodeLlamaCppRoot()): string | undefined {
  if (!root) return undefined;
  return variantFolders(root).find((f) => f.chosen)?.variant;
}

/** Records `variant` (installed) as the choice, with the measurements behind it; others go. */
export function chooseCpuVariant(variant: string, evidence: unknown, root = nodeLlamaCppRoot()): void {
  const folder = installCpuVariant(variant, root);
  writeFileSync(join(folder, CHOICE_FILE), JSON.stringify(evidence, null, 2));
  removeCpuVariants(variant, root);
}

/** Removes Shimmy's variant folders except `keep`'s; returns the variants removed. */
export function removeCpuVariants(keep?: string, root = nodeLlamaCppRoot()): string[] {
  if (!root) return [];
  const removed: string[] = [];
  for (const f of variantFolders(root)) {
    if (f.variant === keep) continue;
    rmSync(f.folder, { recursive: true, force: true });
    removed.push(f.variant);
  }
  return removed;
}

let loadedLibrary: string | undefined;

/** The prebuilt CPU library this process has loaded (Linux: from its memory map), e.g. "zen4". */
export function loadedCpuLibrary(): string | undefined {
  if (loadedLibrary !== undefined || process.platform !== "linux") return loadedLibrary;
  try {
    // A process loads one CPU backend and keeps it, so the first answer stands.
    loadedLibrary = /ggml-cpu-([a-z0-9_]+)\.so/.exec(readFileSync("/proc/self/maps", "utf8"))?.[1];
  } catch {
    // No memory map to read: unknown.
  }
  return loadedLibrary;
}
