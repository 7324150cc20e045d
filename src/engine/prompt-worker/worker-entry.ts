/**
 * The prompt worker's thread: renders chat templates and tokenizes large inputs so that the main
 * event loop stays free. Jobs run one at a time in arrival order. For tokenizing it loads each
 * model's vocabulary only (`vocabOnly`), with the same node-llama-cpp runtime as the main thread.
 */
import type { Template } from "@huggingface/jinja";
import type { Llama, LlamaModel } from "node-llama-cpp";
import { parentPort, workerData } from "node:worker_threads";
import { getRuntime } from "../llama.js";
import type { PromptJob, PromptReply, PromptWorkerData } from "./jobs.js";

const { runtime } = workerData as PromptWorkerData;
const port = parentPort!;

/** Parsed templates by source, most recently used last. */
const templates = new Map<string, Template>();
const MAX_TEMPLATES = 8;
/** Vocabulary-only models by GGUF path. */
const vocabularies = new Map<string, Promise<LlamaModel>>();
let llama: Promise<Llama> | undefined;

async function template(source: string): Promise<Template> {
  let found = templates.get(source);
  if (found) templates.delete(source);
  else {
    const { Template } = await import("@huggingface/jinja");
    found = new Template(source);
    if (templates.size >= MAX_TEMPLATES) templates.delete(templates.keys().next().value!);
  }
  templates.set(source, found);
  return found;
}

function vocabulary(modelPath: string): Promise<LlamaModel> {
  let model = vocabularies.get(modelPath);
  if (!model) {
    llama ??= getRuntime(runtime);
    model = llama.then((l) => l.loadModel({ modelPath, vocabOnly: true }));
    model.catch(() => vocabularies.delete(modelPath));
    vocabularies.set(modelPath, model);
  }
  return model;
}

async function run(job: Exclude<PromptJob, { kind: "forget" } | { kind: "quit" }>): Promise<PromptReply> {
  try {
    if (job.kind === "render") return { id: job.id, text: (await template(job.source)).render(job.context) };
    const model = await vocabulary(job.modelPath);
    return { id: job.id, tokens: Uint32Array.from(model.tokenize(job.text, job.parseSpecial)) };
  } catch (e) {
    return { id: job.id, error: (e as Error).message ?? String(e) };
  }
}

async function quit(): Promise<void> {
  const models = await Promise.allSettled(vocabularies.values());
  for (const m of models) if (m.status === "fulfilled") await m.value.dispose();
  if (llama) await (await llama).dispose();
  port.close();
}

// Jobs run strictly one after another: a tokenize must never be cut by the thread's end (a native
// call interrupted by worker termination aborts the process), so quitting waits its turn too.
let queue = Promise.resolve();
port.on("message", (job: PromptJob) => {
  queue = queue.then(async () => {
    if (job.kind === "quit") return quit();
    if (job.kind === "forget") {
      const model = vocabularies.get(job.modelPath);
      vocabularies.delete(job.modelPath);
      await model?.then((m) => m.dispose(), () => undefined);
      return;
    }
    const reply = await run(job);
    port.postMessage(reply, "tokens" in reply ? [reply.tokens.buffer as ArrayBuffer] : []);
  });
});
