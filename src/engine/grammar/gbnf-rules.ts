/** A growing set of named GBNF rules: unique names, shared primitives, bounded repetition, bounded size. */

/** Longest grammar text we produce; llama.cpp parses it on every request. */
export const MAX_GRAMMAR_CHARS = 1_000_000;
/** Largest count one GBNF repetition carries: llama.cpp expands `x{m,n}` into rules and rejects large counts. */
const REPEAT_CHUNK = 1000;
/** Largest length/count bound we accept at all (longer repetitions are chained chunks). */
export const MAX_REPEAT_BOUND = 100_000;

const HEX = "[0-9a-fA-F]";

/** JSON building blocks, shaped like llama.cpp's json-schema-to-grammar primitives. */
const PRIMITIVES: Readonly<Record<string, { body: string; deps: readonly string[] }>> = {
  // Bounded whitespace: a model cannot spin on spaces forever.
  space: { body: '| " " | "\\n" [ \\t]{0,20}', deps: [] },
  // No raw control chars; escapes allowed, but no \u escape of a surrogate (lengths then count code points exactly).
  char: {
    body: `[^"\\\\\\x7F\\x00-\\x1F] | "\\\\" (["\\\\/bfnrt] | "u" ([0-9a-cA-CefEF] ${HEX}{3} | [dD] [0-7] ${HEX}{2}))`,
    deps: [],
  },
  string: { body: '"\\"" char* "\\""', deps: ["char"] },
  "integral-part": { body: "[0] | [1-9] [0-9]{0,15}", deps: [] },
  "decimal-part": { body: "[0-9]{1,16}", deps: [] },
  number: {
    body: '"-"? integral-part ("." decimal-part)? ([eE] [-+]? integral-part)?',
    deps: ["integral-part", "decimal-part"],
  },
  integer: { body: '"-"? integral-part', deps: ["integral-part"] },
  boolean: { body: '"true" | "false"', deps: [] },
  null: { body: '"null"', deps: [] },
  value: { body: "object | array | string | number | boolean | null", deps: ["object", "array", "string", "number", "boolean", "null"] },
  object: {
    body: '"{" space ( string space ":" space value ( space "," space string space ":" space value )* space )? "}"',
    deps: ["space", "string", "value"],
  },
  array: { body: '"[" space ( value ( space "," space value )* space )? "]"', deps: ["space", "value"] },
  date: { body: '[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [1-2] [0-9] | "3" [0-1] )', deps: [] },
  time: {
    body: '( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{3} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )',
    deps: [],
  },
  "date-time": { body: 'date "T" time', deps: ["date", "time"] },
  hex4: { body: `${HEX}{4}`, deps: [] },
  hex8: { body: `${HEX}{8}`, deps: [] },
  hex12: { body: `${HEX}{12}`, deps: [] },
  uuid: { body: 'hex8 "-" hex4 "-" hex4 "-" hex4 "-" hex12', deps: ["hex8", "hex4", "hex12"] },
};

/** Names our own rules may not take: the root and the primitives keep theirs. */
const RESERVED = new Set(["root", ...Object.keys(PRIMITIVES)]);
const MAX_NAME_LENGTH = 48;

export class GbnfRules {
  private readonly bodies = new Map<string, string>();
  private readonly nameByBody = new Map<string, string>();
  private readonly nextSuffix = new Map<string, number>();
  private size = 0;

  /** `onTooLarge` throws the caller's typed error once the grammar outgrows MAX_GRAMMAR_CHARS. */
  constructor(private readonly onTooLarge: (size: number) => never) {}

  /** Adds `name ::= body` under a unique name made from `nameHint`; an identical rule is reused. */
  rule(nameHint: string, body: string): string {
    const base = ruleBaseName(nameHint);
    const key = `${base}\u0000${body}`;
    const existing = this.nameByBody.get(key);
    if (existing !== undefined) return existing;
    const name = this.freshName(base);
    this.nameByBody.set(key, name);
    this.define(name, body);
    return name;
  }

  /** Takes a unique name now and defines it later (recursive $refs reference a rule before its body exists). */
  reserve(nameHint: string): string {
    const name = this.freshName(ruleBaseName(nameHint));
    this.bodies.set(name, "");
    return name;
  }

  define(name: string, body: string): void {
    this.bodies.set(name, body);
    this.size += name.length + body.length + 5;
    if (this.size > MAX_GRAMMAR_CHARS) this.onTooLarge(this.size);
  }

  /** The name of a JSON building block (see PRIMITIVES), added with what it uses on first need. */
  primitive(name: keyof typeof PRIMITIVES & string): string {
    if (!this.bodies.has(name)) {
      const { body, deps } = PRIMITIVES[name]!;
      this.define(name, body);
      for (const dep of deps) this.primitive(dep);
    }
    return name;
  }

  space(): string {
    return this.primitive("space");
  }

  /**
   * GBNF for `unit` repeated min..max times (max undefined: unbounded); "" when max is 0.
   * Each bounded repetition lives alone in its own rule with a count of at most REPEAT_CHUNK,
   * as llama.cpp's parser rejects large or nested repetition counts; longer runs chain such rules.
   */
  repeat(unit: string, min: number, max: number | undefined, nameHint: string): string {
    if (max === 0) return "";
    if (min === 0 && max === 1) return `${unit}?`;
    if (max === undefined) {
      if (min === 0) return `${unit}*`;
      if (min === 1) return `${unit}+`;
      return `${this.exactly(unit, min, nameHint)} ${unit}*`;
    }
    const parts = [];
    if (min > 0) parts.push(this.exactly(unit, min, nameHint));
    if (max > min) parts.push(this.upTo(unit, max - min, nameHint));
    return parts.join(" ");
  }

  private exactly(unit: string, count: number, nameHint: string): string {
    const fullChunks = Math.floor(count / REPEAT_CHUNK);
    const rest = count % REPEAT_CHUNK;
    const parts: string[] = [];
    if (fullChunks > 0) {
      const chunk = this.rule(`${nameHint}-x${REPEAT_CHUNK}`, `${unit}{${REPEAT_CHUNK}}`);
      for (let i = 0; i < fullChunks; i++) parts.push(chunk);
    }
    if (rest > 0) parts.push(this.rule(`${nameHint}-x${rest}`, `${unit}{${rest}}`));
    return parts.join(" ");
  }

  private upTo(unit: string, count: number, nameHint: string): string {
    const rest = count % REPEAT_CHUNK;
    // upTo(k*C + r) ::= unit{C} upTo((k-1)*C + r) | unit{0,C-1}; upTo(r) ::= unit{0,r}
    let current = this.rule(`${nameHint}-upto${rest}`, `${unit}{0,${rest}}`);
    const fullChunks = Math.floor(count / REPEAT_CHUNK);
    if (fullChunks > 0) {
      const chunk = this.rule(`${nameHint}-x${REPEAT_CHUNK}`, `${unit}{${REPEAT_CHUNK}}`);
      const partial = this.rule(`${nameHint}-upto${REPEAT_CHUNK - 1}`, `${unit}{0,${REPEAT_CHUNK - 1}}`);
      for (let k = 1; k <= fullChunks; k++) {
        current = this.rule(`${nameHint}-upto${k * REPEAT_CHUNK + rest}`, `${chunk} ${current} | ${partial}`);
      }
    }
    return current;
  }

  /** The whole grammar, `root ::= rootBody` first. */
  build(rootBody: string): string {
    const lines = [`root ::= ${rootBody}`];
    for (const [name, body] of this.bodies) lines.push(`${name} ::= ${body}`);
    return `${lines.join("\n")}\n`;
  }

  private freshName(base: string): string {
    if (!this.bodies.has(base) && !RESERVED.has(base)) return base;
    let suffix = this.nextSuffix.get(base) ?? 1;
    while (this.bodies.has(`${base}-${suffix}`)) suffix++;
    this.nextSuffix.set(base, suffix + 1);
    return `${base}-${suffix}`;
  }
}

/** A valid GBNF rule name (letters, digits, dashes) made from any hint. */
function ruleBaseName(hint: string): string {
  const cleaned = hint.replace(/[^a-zA-Z0-9-]+/g, "-").replace(/-+/g, "-").replace(/^-|-$/g, "").slice(0, MAX_NAME_LENGTH);
  return cleaned.replace(/-$/, "") || "r";
}
