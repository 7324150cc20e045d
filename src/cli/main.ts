import { Command } from "commander";
import { createRequire } from "node:module";
import { registerBench } from "./bench.js";
import { registerBuildNative } from "./build-native.js";
import { registerConvert } from "./convert.js";
import { registerDiscover } from "./discover.js";
import { registerDoctor } from "./doctor.js";
import { registerGenerate } from "./generate.js";
import { registerGpuInfo } from "./gpu-info.js";
import { registerInspect } from "./inspect.js";
import { registerList } from "./list.js";
import { registerProbe } from "./probe.js";
import { registerPull } from "./pull.js";
import { registerRm } from "./rm.js";
import { registerQuantize } from "./quantize.js";
import { registerServe } from "./serve.js";
import { registerSynth } from "./synth.js";

const pkg = createRequire(import.meta.url)("../../package.json") as { version: string };

const program = new Command()
  .name("shimmy")
  .description("Zero-config local LLM server: an OpenAI-compatible API over the models already on your disk")
  .version(pkg.version);

registerServe(program);
registerDiscover(program);
registerList(program);
registerInspect(program);
registerProbe(program);
registerGenerate(program);
registerConvert(program);
registerQuantize(program);
registerPull(program);
registerRm(program);
registerGpuInfo(program);
registerDoctor(program);
registerBuildNative(program);
registerBench(program);
registerSynth(program);

await program.parseAsync(process.argv);
