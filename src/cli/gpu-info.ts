import type { Command } from "commander";
import { getRuntime, runtimeOptionsFor } from "../engine/llama.js";
import { configFrom } from "./common.js";
import { describeThreads, formatBytes, toJson } from "./output.js";

export function registerGpuInfo(program: Command): void {
  program
    .command("gpu-info")
    .description("what node-llama-cpp reports about the compute backend")
    .option("--json", "machine-readable output")
    .action(async (flags: { json?: boolean }) => {
      const config = configFrom({}, { gpu: "auto" });
      // The runtime Shimmy would use: the native build (CPU) once it exists, else the prebuilt one.
      const llama = await getRuntime(runtimeOptionsFor(config));
      const vram = await llama.getVramState();
      const devices = llama.gpu ? await llama.getGpuDeviceNames() : [];
      const info = {
        backend: llama.gpu || "cpu",
        supports_gpu_offloading: llama.supportsGpuOffloading,
        devices,
        vram_total_bytes: vram.total,
        vram_free_bytes: vram.free,
        build: llama.buildType,
        llama_cpp_release: llama.llamaCppRelease.release,
        cpu_math_cores: llama.cpuMathCores,
        threads: config.threads,
        batch_threads: config.batchThreads,
        system_info: llama.systemInfo,
      };
      await llama.dispose();
      if (flags.json) {
        console.log(toJson(info));
        return;
      }
      console.log(`backend         ${info.backend}${info.supports_gpu_offloading ? "" : " (no GPU offloading)"}`);
      console.log(`devices         ${devices.length ? devices.join(", ") : "none"}`);
      console.log(`vram            ${llama.gpu ? `${formatBytes(vram.free)} free of ${formatBytes(vram.total)}` : "n/a"}`);
      console.log(`binary          ${info.build}, llama.cpp ${info.llama_cpp_release}`);
      console.log(`cpu math cores  ${info.cpu_math_cores}; Shimmy uses ${describeThreads(config)} by default`);
      console.log(`system info     ${info.system_info}`);
    });
}
