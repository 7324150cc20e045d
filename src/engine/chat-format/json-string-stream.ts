/** Unescapes a JSON string's text as it streams, holding back an escape that is not complete yet. */

const SIMPLE_ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

export interface StringChunk {
  /** Unescaped text decoded from the raw input. */
  text: string;
  /** Raw characters consumed (up to and including the closing quote, when closed). */
  consumed: number;
  /** The closing quote was reached. */
  closed: boolean;
}

/** Decodes raw JSON string text (after the opening quote) up to what is complete. */
export function readJsonStringChunk(raw: string): StringChunk {
  let text = "";
  let i = 0;
  while (i < raw.length) {
    const ch = raw[i]!;
    if (ch === '"') return { text, consumed: i + 1, closed: true };
    if (ch !== "\\") {
      text += ch;
      i++;
      continue;
    }
    if (i + 1 >= raw.length) break;
    const kind = raw[i + 1]!;
    if (kind !== "u") {
      text += SIMPLE_ESCAPES[kind] ?? kind;
      i += 2;
      continue;
    }
    const unit = hexUnit(raw, i + 2);
    if (unit === "incomplete") break;
    if (unit === undefined) {
      text += "u"; // an invalid escape: its letters stay text
      i += 2;
      continue;
    }
    if (unit >= 0xd800 && unit <= 0xdbff) {
      // A high surrogate is held until its low half is known, so no event ends inside a pair.
      if (raw.length < i + 8) break;
      const low = raw.startsWith("\\u", i + 6) ? hexUnit(raw, i + 8) : undefined;
      if (low === "incomplete") break;
      if (typeof low === "number" && low >= 0xdc00 && low <= 0xdfff) {
        text += String.fromCharCode(unit, low);
        i += 12;
        continue;
      }
    }
    text += String.fromCharCode(unit);
    i += 6;
  }
  return { text, consumed: i, closed: false };
}

function hexUnit(raw: string, at: number): number | "incomplete" | undefined {
  const hex = raw.slice(at, at + 4);
  if (!/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  if (hex.length < 4) return "incomplete";
  return parseInt(hex, 16);
}
