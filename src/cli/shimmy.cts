#!/usr/bin/env node
/**
 * The `shimmy` command. CommonJS on purpose: it must set UV_THREADPOOL_SIZE before libuv starts
 * its thread pool (read once, on first use), and Node's ESM loader already uses that pool to read
 * an ES module entry, so an ES module is too late.
 *
 * Why 2 pool threads: node-llama-cpp runs every decode as a job on the pool. With the default 4
 * threads, consecutive decodes land on different pool threads, and with 2 ggml threads per
 * decode each one was measured (2 cores, 100M Q8_0) 1.5–2.3x slower: 6.4 ms per token with 1
 * pool thread, 9.4 ms with 2, 14.5 ms with 4. So while models are loaded Shimmy parks all pool
 * threads but one (engine/pool-reserve.ts) and lends the second to model loads, which then do not
 * pause other models' decoding. Windows has no FIFO to park threads on: one thread there. A size
 * the user set is kept (and parked the same way).
 *
 * Then it runs the bundled CLI (scripts/bundle-cli.ts; faster start-up) when `npm run build` made
 * one next to it, else main.js.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

process.env.UV_THREADPOOL_SIZE ??= process.platform === "win32" ? "1" : "2";
const bundle = join(__dirname, "shimmy.bundle.mjs");
void import(existsSync(bundle) ? pathToFileURL(bundle).href : "./main.js");
