/** Pieces of GBNF text: escaped literals and character classes, integer-range expressions. */

/** Escapes one code point for use inside a GBNF "literal" or [class] (`extra` holds chars special there). */
function escapeCodePoint(cp: number, extra: string): string {
  const ch = String.fromCodePoint(cp);
  if (ch === "\\" || ch === '"' || extra.includes(ch)) return `\\${ch}`;
  if (ch === "\n") return "\\n";
  if (ch === "\r") return "\\r";
  if (ch === "\t") return "\\t";
  if (cp < 0x20 || cp === 0x7f) return `\\x${cp.toString(16).padStart(2, "0")}`;
  // A lone surrogate has no UTF-8 form; name it by number so the grammar text stays valid UTF-8.
  if (cp >= 0xd800 && cp <= 0xdfff) return `\\u${cp.toString(16).padStart(4, "0")}`;
  return ch;
}

/** A GBNF string literal matching `text` exactly. */
export function gbnfLiteral(text: string): string {
  let out = '"';
  for (const ch of text) out += escapeCodePoint(ch.codePointAt(0)!, "");
  return `${out}"`;
}

/** One code point written for use inside a GBNF character class. */
export function gbnfClassChar(cp: number): string {
  return escapeCodePoint(cp, "]-^[");
}

/** A GBNF character class from inclusive code-point ranges (`negated` makes it [^...]). */
export function gbnfClass(ranges: ReadonlyArray<readonly [number, number]>, negated = false): string {
  const body = ranges
    .map(([lo, hi]) => (lo === hi ? gbnfClassChar(lo) : `${gbnfClassChar(lo)}-${gbnfClassChar(hi)}`))
    .join("");
  return `[${negated ? "^" : ""}${body}]`;
}

/** Most digits an unbounded integer may have, as llama.cpp's integral-part. */
export const MAX_INTEGER_DIGITS = 16;

function digitClass(from: number, to: number): string {
  return from === to ? `[${from}]` : `[${from}-${to}]`;
}

function anyDigits(count: number): string {
  return count === 1 ? "[0-9]" : `[0-9]{${count}}`;
}

/** Alternatives matching every digit string of low.length digits between low and high (same length). */
function sameLengthRange(low: string, high: string): string {
  if (low === high) return `"${low}"`;
  let common = 0;
  while (low[common] === high[common]) common++;
  const prefix = common > 0 ? `"${low.slice(0, common)}" ` : "";
  const lo = Number(low[common]);
  const hi = Number(high[common]);
  const restLength = low.length - common - 1;
  if (restLength === 0) return `${prefix}${digitClass(lo, hi)}`;
  const lowRest = low.slice(common + 1);
  const highRest = high.slice(common + 1);
  const lowRestIsMin = /^0*$/.test(lowRest);
  const highRestIsMax = /^9*$/.test(highRest);
  const alternatives: string[] = [];
  // The low digit with its own tail, the digits strictly between with any tail, the high digit with its own tail;
  // a tail that spans all values joins its digit to the middle band.
  const middleFrom = lowRestIsMin ? lo : lo + 1;
  const middleTo = highRestIsMax ? hi : hi - 1;
  if (!lowRestIsMin) alternatives.push(`[${lo}] (${sameLengthRange(lowRest, "9".repeat(restLength))})`);
  if (middleFrom <= middleTo) alternatives.push(`${digitClass(middleFrom, middleTo)} ${anyDigits(restLength)}`);
  if (!highRestIsMax) alternatives.push(`[${hi}] (${sameLengthRange("0".repeat(restLength), highRest)})`);
  return `${prefix}(${alternatives.join(" | ")})`;
}

/** Alternatives matching canonical non-negative decimal integers in [low, high] (high undefined: up to 16 digits). */
function nonNegativeRange(low: number, high: number | undefined): string[] {
  const alternatives: string[] = [];
  const lowDigits = String(low).length;
  const highDigits = high === undefined ? MAX_INTEGER_DIGITS : String(high).length;
  for (let digits = lowDigits; digits <= highDigits; digits++) {
    const bandLow = Math.max(low, digits === 1 ? 0 : 10 ** (digits - 1));
    const bandHigh = high !== undefined && digits === highDigits ? high : 10 ** digits - 1;
    if (high === undefined && digits > lowDigits) {
      // Every longer length is unconstrained: one alternative covers them all.
      alternatives.push(`[1-9] [0-9]{${digits - 1},${MAX_INTEGER_DIGITS - 1}}`);
      break;
    }
    if (bandLow > bandHigh) continue;
    // 10 ** 16 - 1 is not exact as a double; the band's top is all nines there.
    alternatives.push(sameLengthRange(String(bandLow), high !== undefined && digits === highDigits ? String(high) : "9".repeat(digits)));
  }
  return alternatives;
}

/**
 * GBNF alternatives matching the canonical JSON integers in [min, max] (either bound may be absent).
 * Bounds must be safe integers with min <= max.
 */
export function integerRange(min: number | undefined, max: number | undefined): string {
  const alternatives: string[] = [];
  // Negative values: "-" then a magnitude in [max(1, -max), -min].
  if (min === undefined || min < 0) {
    const magnitudeLow = max !== undefined && max < 0 ? -max : 1;
    const magnitudeHigh = min === undefined ? undefined : -min;
    alternatives.push(`"-" (${nonNegativeRange(magnitudeLow, magnitudeHigh).join(" | ")})`);
  }
  if (max === undefined || max >= 0) {
    alternatives.push(...nonNegativeRange(min === undefined || min < 0 ? 0 : min, max));
  }
  return alternatives.join(" | ");
}
