/**
 * The probe child's entry (spawned by probe.ts; never imported): loads one model exactly as the
 * server's pool does (LoadedModel.load, the same context settings), renders the chat template,
 * evaluates a prompt and decodes a few greedy tokens through the decode loop, detokenizing them,
 * then unloads. If llama.cpp aborts anywhere on the way, only this process dies.
 */
import { getRuntime } from "../llama.js";
import { LoadedModel } from "../loaded-model.js";
import type { GenerationRequest } from "../types.js";
import { PROBE_CAUGHT_ERROR_EXIT, type ProbeJob, type ProbeReport } from "./probe-job.js";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function report(r: ProbeReport, code: number): never {
  process.stdout.write(`${JSON.stringify(r)}\n`, () => process.exit(code));
  // The write callback exits; block here until it does.
  return undefined as never;
}

async function probe(job: ProbeJob): Promise<ProbeReport> {
  const llama = await getRuntime(job.runtime);
  const model = await LoadedModel.load(llama, job.spec, job.ggufPath, job.load);
  const base: Omit<GenerationRequest, "input"> = { model: job.spec.name, sampling: { temperature: 0 }, maxTokens: job.tokens, stop: [] };
  let prepared;
  try {
    // The chat path renders the model's template, as a chat request would.
    prepared = await model.prepare({ ...base, input: { kind: "chat", messages: [{ role: "user", content: "Hello" }] } });
  } catch {
    // A template that refuses this conversation fails requests with a 400, not a crash.
    prepared = await model.prepare({ ...base, input: { kind: "text", text: "Hello" } });
  }
  const done = await model.generate(prepared);
  await model.dispose();
  return { ok: true, loadMs: Math.round(model.loadMs), decoded: done.usage.completionTokens };
}

try {
  const job = JSON.parse(await readStdin()) as ProbeJob;
  report(await probe(job), 0);
} catch (e) {
  report({ ok: false, error: (e as Error)?.message ?? String(e) }, PROBE_CAUGHT_ERROR_EXIT);
}
