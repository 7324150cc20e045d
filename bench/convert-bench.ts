/**
 * Conversion throughput: MB/s of SafeTensors read → GGUF written, for f16 and q8_0, beside a plain
 * read/write copy of the same bytes measured in the same run. Not a test: prints ratios.
 * Runs the compiled converter (dist/, built by the npm script), as `shimmy` does: from source,
 * each encode thread would first have to load tsx.
 *   npm run bench:convert [-- --size-mb 300 --runs 3 --workers N --json]
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { median } from "../src/engine/rates.js";
import { writeSyntheticHfLlama } from "../src/convert/synthetic-hf.js";

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(args[i + 1]);
};
const json = args.includes("--json");
const sizeMb = flag("size-mb", 300);
const runs = flag("runs", 3);
const workers = args.includes("--workers") ? flag("workers", 0) : undefined;
const compiled = pathToFileURL(resolve(import.meta.dirname, "..", "dist", "convert", "convert.js")).href;
const { convertHfFolder } = (await import(compiled)) as typeof import("../src/convert/convert.js");
const log = (s: string): void => void (json ? process.stderr.write(s + "\n") : console.log(s));

/** cat-style copy in 1 MiB chunks: the I/O floor the converter is compared against. */
function copyFile(src: string, dst: string): void {
  const inFd = openSync(src, "r");
  const outFd = openSync(dst, "w");
  const buf = Buffer.allocUnsafe(1 << 20);
  let pos = 0;
  for (;;) {
    const n = readSync(inFd, buf, 0, buf.length, pos);
    if (n === 0) break;
    writeSync(outFd, buf, 0, n, pos);
    pos += n;
  }
  closeSync(inFd);
  closeSync(outFd);
}

const work = mkdtempSync(join(tmpdir(), "shimmy-bench-convert-"));
try {
  // hidden 1024, ffn 2816: ~12.8M params per layer; embeddings 32000×1024.
  const perLayerMb = (4 * 1024 * 1024 + 3 * 1024 * 2816) * 2 / 1e6;
  const layers = Math.max(1, Math.round((sizeMb - 65.5) / perLayerMb));
  const src = join(work, "model");
  const tokenizerFrom = resolve(process.env.SHIMMY_TEST_MODELS ?? resolve(import.meta.dirname, "..", "..", "shared", "models"), "stories260K", "hf");
  log(`generating a synthetic BF16 llama (${layers} layers) in ${work} …`);
  const bytes = writeSyntheticHfLlama(src, { hidden: 1024, layers, ffn: 2816, vocab: 32000, dtype: "BF16", seed: 42, tokenizerFrom });
  const weights = join(src, "model.safetensors");
  const mb = statSync(weights).size / 1e6;
  log(`source: ${mb.toFixed(1)} MB of BF16 weights (${(bytes / 2 / 1e6).toFixed(0)}M params), ${runs} runs each, median reported, encode threads: ${workers ?? "default"}`);

  const rows: { name: string; seconds: number; mbPerS: number; outMb: number }[] = [];
  const time = (name: string, fn: (out: string) => Promise<void> | void): Promise<void> => {
    return (async () => {
      const seconds: number[] = [];
      let outMb = 0;
      for (let r = 0; r < runs; r++) {
        const out = join(work, `out-${name}-${r}`);
        const t0 = performance.now();
        await fn(out);
        seconds.push((performance.now() - t0) / 1000);
        outMb = statSync(out).size / 1e6;
        rmSync(out);
        log(`  ${name} run ${r + 1}: ${seconds[r]!.toFixed(2)} s`);
      }
      const s = median(seconds);
      rows.push({ name, seconds: s, mbPerS: mb / s, outMb });
    })();
  };
  copyFile(weights, join(work, "warm")); // page cache warm-up for the source
  rmSync(join(work, "warm"));
  await time("copy", (out) => copyFile(weights, out));
  await time("f16", async (out) => void (await convertHfFolder(src, out, "f16", undefined, { workers })));
  await time("q8_0", async (out) => void (await convertHfFolder(src, out, "q8_0", undefined, { workers })));
  const copy = rows[0]!;
  if (json) {
    console.log(JSON.stringify({ source_mb: mb, runs, results: rows.map((r) => ({ ...r, ratio_vs_copy: r.mbPerS / copy.mbPerS })) }));
  } else {
    console.log("\n| path | median s | MB/s (source) | output MB | vs copy |\n| --- | ---: | ---: | ---: | ---: |");
    for (const r of rows) console.log(`| ${r.name} | ${r.seconds.toFixed(2)} | ${r.mbPerS.toFixed(0)} | ${r.outMb.toFixed(0)} | ${(r.mbPerS / copy.mbPerS).toFixed(2)}× |`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
