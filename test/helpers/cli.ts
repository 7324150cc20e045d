import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "./paths.js";

/** The `shimmy` launcher from source (it sets the libuv pool size, then imports main.ts). */
export const CLI = join(REPO_ROOT, "src", "cli", "shimmy.cts");

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI (from source, through tsx) in a child process with an isolated HOME. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = REPO_ROOT): CliResult {
  const r = spawnSync(process.execPath, ["--import", "tsx", CLI, ...args], {
    cwd,
    // SHIMMY_NATIVE=0: the same prebuilt binary whether or not this machine has a native build.
    env: { PATH: process.env.PATH, SHIMMY_THREADS: "1", SHIMMY_GPU: "off", SHIMMY_NATIVE: "0", NO_COLOR: "1", ...env },
    encoding: "utf8",
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
