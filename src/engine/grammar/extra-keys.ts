/** Keys of additional properties: any JSON string except the declared property names (no duplicate keys). */
import { gbnfClass, gbnfLiteral } from "./gbnf-text.js";
import type { GbnfRules } from "./gbnf-rules.js";
import { UnsupportedSchemaError } from "./schema-errors.js";

/** Longest declared property name we build an exclusion for (the exclusion has a rule per character). */
const MAX_EXCLUDED_NAME_LENGTH = 1000;

interface TrieNode {
  end: boolean;
  children: Map<number, TrieNode>;
}

/** Code points a JSON string may hold unescaped. */
function isRawJsonChar(cp: number): boolean {
  return cp >= 0x20 && cp !== 0x22 && cp !== 0x5c && cp !== 0x7f && (cp < 0xd800 || cp > 0xdfff);
}

/**
 * A rule matching a quoted JSON key that decodes to none of `excluded`. Walks a trie of the excluded names:
 * at each node a key either follows a child (written in its one canonical JSON spelling) or leaves the trie
 * with another raw character. Escapes are not offered where they could spell an excluded name another way.
 */
export function extraKeyRule(excluded: readonly string[], hint: string, rules: GbnfRules, path: string): string {
  const char = rules.primitive("char");
  if (excluded.length === 0) return rules.primitive("string");
  const root: TrieNode = { end: false, children: new Map() };
  for (const name of excluded) {
    if (name.length > MAX_EXCLUDED_NAME_LENGTH) {
      throw new UnsupportedSchemaError("properties", path, `property names longer than ${MAX_EXCLUDED_NAME_LENGTH} characters cannot be excluded from additionalProperties`);
    }
    let node = root;
    for (const ch of name) {
      const cp = ch.codePointAt(0)!;
      let next = node.children.get(cp);
      if (next === undefined) node.children.set(cp, (next = { end: false, children: new Map() }));
      node = next;
    }
    node.end = true;
  }
  // Continuations from `node` that end the key anywhere but on an excluded name.
  const rest = (node: TrieNode): string => {
    if (node.children.size === 0) return node.end ? `${char}+` : `${char}*`;
    const alternatives: string[] = [];
    const left: Array<[number, number]> = [[0x00, 0x1f], [0x22, 0x22], [0x5c, 0x5c], [0x7f, 0x7f]];
    for (const [cp, child] of node.children) {
      const spelled = gbnfLiteral(JSON.stringify(String.fromCodePoint(cp)).slice(1, -1));
      alternatives.push(`${spelled} ${rules.rule(hint, rest(child))}`);
      if (isRawJsonChar(cp)) left.push([cp, cp]);
    }
    alternatives.push(`${gbnfClass(left, true)} ${char}*`);
    return `( ${alternatives.join(" | ")} )${node.end ? "" : "?"}`;
  };
  return rules.rule(hint, `"\\"" ${rest(root)} "\\""`);
}
