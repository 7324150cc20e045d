import { bertConverter } from "./bert.js";
import { nomicBertConverter } from "./nomic-bert.js";
import { gemma2Converter } from "./gemma2.js";
import { gemma3Converter } from "./gemma3.js";
import { gemma3MultimodalConverter } from "./gemma3-multimodal.js";
import { llamaConverter } from "./llama.js";
import { mixtralConverter } from "./mixtral.js";
import { phi3Converter } from "./phi3.js";
import { qwen2Converter } from "./qwen2.js";
import { qwen2MoeConverter } from "./qwen2-moe.js";
import { qwen3Converter } from "./qwen3.js";
import { qwen3MoeConverter } from "./qwen3-moe.js";
import type { ArchitectureConverter } from "./types.js";

export const CONVERTERS: readonly ArchitectureConverter[] = [llamaConverter, qwen2Converter, qwen3Converter, phi3Converter, gemma2Converter, gemma3Converter, qwen3MoeConverter, qwen2MoeConverter, mixtralConverter, gemma3MultimodalConverter, bertConverter, nomicBertConverter];

export const SUPPORTED_ARCHITECTURES: readonly string[] = CONVERTERS.flatMap((c) => c.hfArchitectures);

export function converterFor(hfArchitecture: string | undefined): ArchitectureConverter | undefined {
  return CONVERTERS.find((c) => hfArchitecture !== undefined && c.hfArchitectures.includes(hfArchitecture));
}
