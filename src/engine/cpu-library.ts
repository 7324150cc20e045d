import { readFileSync } from "node:fs";

let loadedLibrary: string | undefined;

/**
 * Which of the prebuilt binary's CPU libraries llama.cpp loaded in this process ("haswell",
 * "zen4", …: it picks the one whose feature list scores highest on this CPU), read from the
 * process's memory map; undefined before a model has loaded, for the native build (one CPU
 * library, no name) and off Linux.
 */
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
