import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadConfig } from "../src/config/config.js";
import { chooseCpuVariant, chosenCpuVariant, installCpuVariant, installedCpuVariants, prebuiltCpuLibraries, removeCpuVariants } from "../src/engine/cpu-variants.js";
import { runCli } from "./helpers/cli.js";
import { STORIES_GGUF } from "./helpers/paths.js";
import { golden } from "./helpers/server.js";

/** Every x64 CPU runs the baseline library; the other names depend on the machine. */
const BASELINE = "x64";
const prebuilt = prebuiltCpuLibraries();
// Where the prebuilt binary has one CPU library (macOS, arm64) there is nothing to choose.
const skip = prebuilt === undefined ? "node-llama-cpp ships one CPU library on this platform" : false;

// `shimmy tune-cpu` keeps its choice in node_modules; a developer's own choice is put back after.
let saved: { variant: string; evidence: unknown } | undefined;
before(() => {
  const variant = chosenCpuVariant();
  if (variant === undefined) return;
  const folder = installCpuVariant(variant);
  saved = { variant, evidence: JSON.parse(readFileSync(join(folder, "shimmy-cpu-variant.json"), "utf8")) };
});
after(() => {
  removeCpuVariants();
  if (saved) chooseCpuVariant(saved.variant, saved.evidence);
});

describe("choosing among the prebuilt binary's CPU libraries", { skip }, () => {
  it("lists the prebuilt CPU libraries", () => {
    assert.ok(prebuilt!.variants.includes(BASELINE), `${prebuilt!.variants.join(",")} has ${BASELINE}`);
    assert.ok(prebuilt!.variants.length > 1);
  });

  it("loads the library asked for, which gives golden.json's greedy text", () => {
    const g = golden.greedy[0]!;
    const bench = runCli(["bench", STORIES_GGUF, "--no-default-locations", "--json", "--runs", "1", "--gen-tokens", "8", "--prompt-tokens", "8"], { SHIMMY_CPU_VARIANT: BASELINE });
    assert.equal(bench.status, 0, bench.stderr);
    const result = JSON.parse(bench.stdout) as { build: string; cpu_library: string | null };
    assert.equal(result.build, "prebuilt");
    if (process.platform === "linux") assert.equal(result.cpu_library, BASELINE);
    const gen = runCli(["generate", STORIES_GGUF, "-p", g.prompt, "--no-default-locations", "--json", "-t", "0", "-n", String(g.maxTokens), "--cpu-variant", BASELINE]);
    assert.equal(gen.status, 0, gen.stderr);
    assert.equal((JSON.parse(gen.stdout) as { text: string }).text, g.text);
  });

  it("names an unknown library in the error, listing the ones there are", () => {
    const r = runCli(["bench", STORIES_GGUF, "--no-default-locations", "--json", "--runs", "1", "--gen-tokens", "4", "--prompt-tokens", "4", "--cpu-variant", "nosuchcpu"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no CPU library "nosuchcpu".*there are: .*x64/);
    assert.throws(() => loadConfig({ cpuVariant: "../evil" }, { HOME: "/nonexistent" }), /not a library name/);
  });

  it("uses the chosen library by default where the prebuilt CPU binary would run, until reset", () => {
    chooseCpuVariant(BASELINE, { test: true });
    assert.equal(chosenCpuVariant(), BASELINE);
    const bench = runCli(["bench", STORIES_GGUF, "--no-default-locations", "--json", "--runs", "1", "--gen-tokens", "4", "--prompt-tokens", "4"], { SHIMMY_CPU_VARIANT: "" });
    assert.equal(bench.status, 0, bench.stderr);
    if (process.platform === "linux") assert.equal((JSON.parse(bench.stdout) as { cpu_library: string }).cpu_library, BASELINE);
    const reset = runCli(["tune-cpu", "--reset", "--json"]);
    assert.equal(reset.status, 0, reset.stderr);
    assert.deepEqual((JSON.parse(reset.stdout) as { removed: string[] }).removed, [BASELINE]);
    assert.equal(chosenCpuVariant(), undefined);
  });

  it("applies the choice only to the CPU-only prebuilt binary, and an explicit setting wins", () => {
    const machine = (gpu: boolean, native: boolean) => ({ gpuMayBeAvailable: () => gpu, nativeBuildExists: () => native, chosenCpuVariant: () => "cooperlake" });
    const variant = (m: ReturnType<typeof machine>, overrides: { gpu?: false; cpuVariant?: string } = {}, env: Record<string, string> = {}) => loadConfig(overrides, { HOME: "/nonexistent", ...env }, 2, m).cpuVariant;
    assert.equal(variant(machine(false, false)), "cooperlake");
    assert.equal(variant(machine(true, false)), undefined, "a GPU may be present");
    assert.equal(variant(machine(true, false), { gpu: false }), "cooperlake", "--gpu off");
    assert.equal(variant(machine(false, true)), undefined, "the native build has its own CPU code");
    assert.equal(variant(machine(false, false), { cpuVariant: "default" }), undefined, "--cpu-variant default");
    assert.equal(variant(machine(false, false), {}, { SHIMMY_CPU_VARIANT: "haswell" }), "haswell");
    assert.equal(variant(machine(true, false), { cpuVariant: "skylakex" }, { SHIMMY_CPU_VARIANT: "haswell" }), "skylakex", "the flag over the environment");
  });

  it("tune-cpu measures every library against llama.cpp's pick and keeps a choice only if it won the confirmation", () => {
    const r = runCli(["tune-cpu", STORIES_GGUF, "--no-default-locations", "--json", "--rounds", "1", "--confirm", "1", "--tokens", "8", "--concurrency", "2"]);
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout) as {
      chosen: string | null;
      default_library: string | null;
      margin_percent: number;
      measured: { candidate: string; median_score: number | null; single_tokens_per_second: number | null; concurrent_tokens_per_second: number | null; error: string | null }[];
      confirmation: { library: string; score: number; default_score: number } | null;
    };
    assert.deepEqual(result.measured.map((m) => m.candidate).sort(), ["default", ...prebuilt!.variants].sort());
    for (const m of result.measured) {
      assert.ok((m.median_score ?? 0) > 0 || m.error !== null, `${m.candidate}: a rate or the reason it did not run`);
      // A library this CPU cannot run is named as such (here: alderlake, sapphirerapids).
      if (m.error !== null && process.platform === "linux") assert.match(m.error, /lacks its instructions/);
    }
    const baseline = result.measured.find((m) => m.candidate === BASELINE)!;
    assert.ok(baseline.median_score! > 0, "the baseline library runs anywhere");
    assert.ok(baseline.single_tokens_per_second! > 0 && baseline.concurrent_tokens_per_second! > 0, "scored from a single stream and 2 at once");
    if (process.platform === "linux") assert.ok(result.default_library && prebuilt!.variants.includes(result.default_library));
    const won = result.confirmation !== null && result.confirmation.score >= result.confirmation.default_score * (1 + result.margin_percent / 100);
    assert.equal(result.chosen, won ? result.confirmation!.library : null);
    assert.equal(chosenCpuVariant(), result.chosen ?? undefined);
    // Candidates that were not chosen leave nothing behind.
    assert.deepEqual(installedCpuVariants(), result.chosen === null ? [] : [result.chosen]);
    removeCpuVariants();
  });
});
