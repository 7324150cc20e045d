/** Deterministic pseudo-random floats (xorshift32) in [-scale/2, scale/2): synthetic weights for benchmarks and tests. */
export function xorshiftFloats(elements: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(elements);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < elements; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 0xffffffff - 0.5) * scale;
  }
  return out;
}
