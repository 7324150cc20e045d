import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { after, before, describe, it } from "node:test";
import { runCli } from "./helpers/cli.js";
import { tempDir } from "./helpers/paths.js";

describe("shimmy serve on a port that is taken", () => {
  const home = tempDir();
  let blocker: Server;
  let port: number;
  before(async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    port = (blocker.address() as { port: number }).port;
  });
  after(async () => {
    await new Promise((resolve) => blocker.close(resolve));
    home.cleanup();
  });

  it("exits 1 with one line naming the address and the way out, no stack trace", () => {
    const r = runCli(["serve", "--port", String(port)], { HOME: home.path, SHIMMY_NO_DEFAULT_LOCATIONS: "1" });
    assert.equal(r.status, 1);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.equal(lines[0], `shimmy: cannot listen on 127.0.0.1:${port}: the port is already in use (choose another with --port N, or --bind auto for the first free one from 11435)`);
    assert.doesNotMatch(r.stdout, /listening/);
  });
});
