import { closeSync, openSync, readSync } from "node:fs";
import { type GgufFile, readGguf } from "../../src/formats/gguf.js";
import { type GgufWriteTensor, type GgufWriteValue, writableMetadata, writeGguf } from "../../src/formats/gguf-writer.js";

/** A GGUF's tensors as the writer takes them, their bytes read from the file when written. */
export function writableTensors(file: GgufFile): GgufWriteTensor[] {
  return file.tensors.map((t) => ({
    name: t.name,
    dims: [...t.dims],
    type: t.type,
    data: () => {
      const fd = openSync(file.path, "r");
      try {
        const buf = Buffer.alloc(t.bytes);
        readSync(fd, buf, 0, t.bytes, file.dataOffset + t.offset);
        return buf;
      } finally {
        closeSync(fd);
      }
    },
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
