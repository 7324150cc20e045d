/** One progress report, shaped as Ollama's `ProgressResponse` (the /api/pull stream sends these as they are). */
export interface PullProgress {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

export type ProgressSink = (event: PullProgress) => void;

/** Ollama names a layer by the first 12 hex digits of its digest: "pulling 6a0746a1ec1a". */
export function layerStatus(id: string): string {
  return `pulling ${id.replace(/^sha256[:-]/, "").slice(0, 12)}`;
}
