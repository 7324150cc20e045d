import { type GgufFile, readGguf, readGgufTensorData } from "../../src/formats/gguf.js";
import { type GgufWriteTensor, type GgufWriteValue, writableMetadata, writeGguf } from "../../src/formats/gguf-writer.js";

/** A GGUF's tensors as the writer takes them, their bytes read from the file when written. */
export function writableTensors(file: GgufFile): GgufWriteTensor[] {
  return file.tensors.map((t) => ({
    name: t.name,
    dims: [...t.dims],
    type: t.type,
    data: () => readGgufTensorData(file, t),
  }));
}

/** Writes `source` to `target` with its metadata and tensor table changed by `edit`. */
export async function rewriteGguf(
  source: string,
  target: string,
  edit: (metadata: Map<string, GgufWriteValue>, tensors: GgufWriteTensor[]) => GgufWriteTensor[] | void,
): Promise<void> {
  const file = readGguf(source);
  const metadata = writableMetadata(file);
  let tensors = writableTensors(file);
  tensors = edit(metadata, tensors) ?? tensors;
  await writeGguf(target, metadata, tensors);
}
