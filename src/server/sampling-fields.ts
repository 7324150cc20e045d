import type { SamplingOptions } from "../engine/types.js";

/** The OpenAI-named sampling fields that more than one wire format carries (`null` = unset). */
export interface SamplingFields {
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  repeat_penalty?: number | null;
  seed?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
}

/** Those fields as the engine's sampling options; an unset temperature is the wire's own default. */
export function samplingFromFields(body: SamplingFields, defaultTemperature: number): SamplingOptions {
  return {
    temperature: body.temperature ?? defaultTemperature,
    topP: body.top_p ?? undefined,
    topK: body.top_k ?? undefined,
    minP: body.min_p ?? undefined,
    seed: body.seed ?? undefined,
    presencePenalty: body.presence_penalty ?? undefined,
    frequencyPenalty: body.frequency_penalty ?? undefined,
    repeatPenalty: body.repeat_penalty ?? undefined,
    logitBias: body.logit_bias ? new Map(Object.entries(body.logit_bias).map(([k, v]) => [Number(k), v])) : undefined,
  };
}

/** `stop` as a string, a list of strings, or unset → the list. */
export function stopList(stop: string | string[] | null | undefined): string[] {
  if (stop == null) return [];
  return typeof stop === "string" ? [stop] : stop;
}
