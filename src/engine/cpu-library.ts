import { readFileSync } from "node:fs";

/** The answer once a CPU backend is mapped: a variant name, or null for the native build's unnamed one. */
let known: string | null | undefined;

/**
 * Which of the prebuilt binary's CPU libraries llama.cpp loaded in this process ("haswell",
 * "zen4", …: it picks the one whose feature list scores highest on this CPU), read from the
 * process's memory map; undefined before a model has loaded, for the native build (one CPU
 * library, no name) and off Linux.
 */
export function loadedCpuLibrary(): string | undefined {
  if (known === undefined && process.platform === "linux") {
    try {
      // A process loads one CPU backend and keeps it, so the first answer stands; until one is
      // mapped, each call looks again.
      const match = /libggml-cpu(?:-([a-z0-9_]+))?\.so/.exec(readFileSync("/proc/self/maps", "utf8"));
      if (match) known = match[1] ?? null;
    } catch {
      // No memory map to read: unknown.
    }
  }
  return known ?? undefined;
}
