;; The converter's per-value loops in WebAssembly SIMD (simd-kernels.ts loads them).
;; Each gives bit for bit what the scalar reference in half.ts / quantize.ts gives.
;; Pointers are byte offsets into the imported memory. The loops work in whole vectors
;; (8 values; 32 for Q8_0), so they may read and write up to 64 bytes past the `n` values:
;; callers leave that much room after every region.
;; Rebuild simd-kernels-wasm.ts from this file with `npm run build:kernels`.
(module
  (import "env" "memory" (memory 1))

  ;; float32 bits → half bits in the low 16 bits of each lane, round to nearest even.
  (func $f32x4_to_f16 (param $u v128) (result v128)
    (local $a v128) (local $r v128)
    (local.set $a (v128.and (local.get $u) (i32x4.splat (i32.const 0x7fffffff))))
    ;; Normal halves: drop 13 mantissa bits, adding 0xfff plus the kept lowest bit rounds to even.
    (local.set $r
      (i32x4.sub
        (i32x4.shr_u
          (i32x4.add
            (i32x4.add (local.get $a) (i32x4.splat (i32.const 0xfff)))
            (v128.and (i32x4.shr_u (local.get $a) (i32.const 13)) (i32x4.splat (i32.const 1))))
          (i32.const 13))
        (i32x4.splat (i32.const 0x1c000))))
    ;; Below 2^-14: the float adder rounds |x| + 0.5 to a multiple of 2^-24, the subnormal half's unit.
    (local.set $r
      (v128.bitselect
        (i32x4.sub (f32x4.add (local.get $a) (f32x4.splat (f32.const 0.5))) (i32x4.splat (i32.const 0x3f000000)))
        (local.get $r)
        (i32x4.lt_s (local.get $a) (i32x4.splat (i32.const 0x38800000)))))
    (local.set $r
      (v128.bitselect (i32x4.splat (i32.const 0x7c00)) (local.get $r)
        (i32x4.ge_s (local.get $a) (i32x4.splat (i32.const 0x47800000)))))
    (local.set $r
      (v128.bitselect (i32x4.splat (i32.const 0x7e00)) (local.get $r)
        (i32x4.gt_s (local.get $a) (i32x4.splat (i32.const 0x7f800000)))))
    (v128.or (local.get $r)
      (v128.and (i32x4.shr_u (local.get $u) (i32.const 16)) (i32x4.splat (i32.const 0x8000)))))

  ;; half bits (low 16 bits of each lane) → float32 bits; every NaN becomes 0x7fc00000.
  (func $f16x4_to_f32 (param $h v128) (result v128)
    (local $a v128) (local $r v128)
    (local.set $a (v128.and (local.get $h) (i32x4.splat (i32.const 0x7fff))))
    (local.set $r (i32x4.add (i32x4.shl (local.get $a) (i32.const 13)) (i32x4.splat (i32.const 0x38000000))))
    (local.set $r
      (v128.bitselect
        (f32x4.mul (f32x4.convert_i32x4_u (local.get $a)) (f32x4.splat (f32.const 0x1p-24)))
        (local.get $r)
        (i32x4.lt_s (local.get $a) (i32x4.splat (i32.const 0x400)))))
    (local.set $r
      (v128.bitselect (i32x4.splat (i32.const 0x7f800000)) (local.get $r)
        (i32x4.ge_s (local.get $a) (i32x4.splat (i32.const 0x7c00)))))
    (local.set $r
      (v128.or (local.get $r) (i32x4.shl (v128.and (local.get $h) (i32x4.splat (i32.const 0x8000))) (i32.const 16))))
    (v128.bitselect (i32x4.splat (i32.const 0x7fc00000)) (local.get $r)
      (i32x4.gt_s (local.get $a) (i32x4.splat (i32.const 0x7c00)))))

  ;; float32 bits → bfloat16 bits in the low 16 bits of each lane, as ggml_compute_fp32_to_bf16.
  (func $f32x4_to_bf16 (param $u v128) (result v128)
    (v128.bitselect
      (v128.or (i32x4.shr_u (local.get $u) (i32.const 16)) (i32x4.splat (i32.const 64)))
      (i32x4.shr_u
        (i32x4.add
          (i32x4.add (local.get $u) (i32x4.splat (i32.const 0x7fff)))
          (v128.and (i32x4.shr_u (local.get $u) (i32.const 16)) (i32x4.splat (i32.const 1))))
        (i32.const 16))
      (i32x4.gt_s (v128.and (local.get $u) (i32x4.splat (i32.const 0x7fffffff))) (i32x4.splat (i32.const 0x7f800000)))))

  ;; bfloat16 magnitudes (8 lanes of 16 bits) → half magnitudes, every case: subnormal halves go
  ;; through float32 as in $f32x4_to_f16, past 65504 is infinity, NaN is 0x7e00.
  (func $bf16x8_to_f16_any (param $a v128) (result v128)
    (local $r v128)
    (local.set $r (i16x8.shl (i16x8.sub (local.get $a) (i16x8.splat (i32.const 0x3800))) (i32.const 3)))
    (local.set $r
      (v128.bitselect
        (i16x8.narrow_i32x4_u
          (i32x4.sub
            (f32x4.add (i32x4.shl (i32x4.extend_low_i16x8_u (local.get $a)) (i32.const 16)) (f32x4.splat (f32.const 0.5)))
            (i32x4.splat (i32.const 0x3f000000)))
          (i32x4.sub
            (f32x4.add (i32x4.shl (i32x4.extend_high_i16x8_u (local.get $a)) (i32.const 16)) (f32x4.splat (f32.const 0.5)))
            (i32x4.splat (i32.const 0x3f000000))))
        (local.get $r)
        (i16x8.lt_s (local.get $a) (i16x8.splat (i32.const 0x3880)))))
    (local.set $r
      (v128.bitselect (i16x8.splat (i32.const 0x7c00)) (local.get $r) (i16x8.gt_s (local.get $a) (i16x8.splat (i32.const 0x477f)))))
    (v128.bitselect (i16x8.splat (i32.const 0x7e00)) (local.get $r) (i16x8.gt_s (local.get $a) (i16x8.splat (i32.const 0x7f80)))))

  ;; bfloat16 → half. Where all 8 values are normal halves (the usual case for weights) the
  ;; conversion is a rebias of the exponent: bfloat16's 7 mantissa bits fit without rounding.
  (func (export "bf16_to_f16") (param $src i32) (param $dst i32) (param $n i32)
    (local $end i32) (local $b v128) (local $a v128)
    ;; The loop's constants.
    (local $magnitude v128) (local $sign v128) (local $lowest v128) (local $highest v128) (local $rebias v128)
    (local.set $magnitude (i16x8.splat (i32.const 0x7fff)))
    (local.set $sign (i16x8.splat (i32.const 0x8000)))
    (local.set $lowest (i16x8.splat (i32.const 0x3880)))
    (local.set $highest (i16x8.splat (i32.const 0x477f)))
    (local.set $rebias (i16x8.splat (i32.const 0x3800)))
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 1))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $b (v128.load (local.get $src)))
        (local.set $a (v128.and (local.get $b) (local.get $magnitude)))
        (v128.store (local.get $dst)
          (v128.or
            (v128.and (local.get $b) (local.get $sign))
            (if (result v128)
              (v128.any_true
                (v128.or
                  (i16x8.lt_s (local.get $a) (local.get $lowest))
                  (i16x8.gt_s (local.get $a) (local.get $highest))))
              (then (call $bf16x8_to_f16_any (local.get $a)))
              (else (i16x8.shl (i16x8.sub (local.get $a) (local.get $rebias)) (i32.const 3))))))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (br $next))))

  ;; float32 → half. Where all 8 values are normal halves (or round up to infinity) only the
  ;; exponent rebias and the rounding of the dropped mantissa bits are needed.
  (func (export "f32_to_f16") (param $src i32) (param $dst i32) (param $n i32)
    (local $end i32) (local $lo v128) (local $hi v128) (local $alo v128) (local $ahi v128)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $lo (v128.load (local.get $src)))
        (local.set $hi (v128.load offset=16 (local.get $src)))
        (local.set $alo (v128.and (local.get $lo) (i32x4.splat (i32.const 0x7fffffff))))
        (local.set $ahi (v128.and (local.get $hi) (i32x4.splat (i32.const 0x7fffffff))))
        (v128.store (local.get $dst)
          (if (result v128)
            (v128.any_true
              (v128.or
                (v128.or
                  (i32x4.lt_s (local.get $alo) (i32x4.splat (i32.const 0x38800000)))
                  (i32x4.ge_s (local.get $alo) (i32x4.splat (i32.const 0x47800000))))
                (v128.or
                  (i32x4.lt_s (local.get $ahi) (i32x4.splat (i32.const 0x38800000)))
                  (i32x4.ge_s (local.get $ahi) (i32x4.splat (i32.const 0x47800000))))))
            (then
              (i16x8.narrow_i32x4_u (call $f32x4_to_f16 (local.get $lo)) (call $f32x4_to_f16 (local.get $hi))))
            (else
              (v128.or
                (i16x8.narrow_i32x4_u
                  (i32x4.sub
                    (i32x4.shr_u
                      (i32x4.add
                        (i32x4.add (local.get $alo) (i32x4.splat (i32.const 0xfff)))
                        (v128.and (i32x4.shr_u (local.get $alo) (i32.const 13)) (i32x4.splat (i32.const 1))))
                      (i32.const 13))
                    (i32x4.splat (i32.const 0x1c000)))
                  (i32x4.sub
                    (i32x4.shr_u
                      (i32x4.add
                        (i32x4.add (local.get $ahi) (i32x4.splat (i32.const 0xfff)))
                        (v128.and (i32x4.shr_u (local.get $ahi) (i32.const 13)) (i32x4.splat (i32.const 1))))
                      (i32.const 13))
                    (i32x4.splat (i32.const 0x1c000))))
                (v128.and
                  (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $lo) (i32.const 16)) (i32x4.shr_s (local.get $hi) (i32.const 16)))
                  (i16x8.splat (i32.const 0x8000)))))))
        (local.set $src (i32.add (local.get $src) (i32.const 32)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (br $next))))

  (func (export "f32_to_bf16") (param $src i32) (param $dst i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (v128.store (local.get $dst)
          (i16x8.narrow_i32x4_u
            (call $f32x4_to_bf16 (v128.load (local.get $src)))
            (call $f32x4_to_bf16 (v128.load offset=16 (local.get $src)))))
        (local.set $src (i32.add (local.get $src) (i32.const 32)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (br $next))))

  (func (export "f16_to_f32") (param $src i32) (param $dst i32) (param $n i32)
    (local $end i32) (local $h v128)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 1))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $h (v128.load (local.get $src)))
        (v128.store (local.get $dst) (call $f16x4_to_f32 (i32x4.extend_low_i16x8_u (local.get $h))))
        (v128.store offset=16 (local.get $dst) (call $f16x4_to_f32 (i32x4.extend_high_i16x8_u (local.get $h))))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
        (br $next))))

  (func (export "bf16_to_f32") (param $src i32) (param $dst i32) (param $n i32)
    (local $end i32) (local $b v128)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 1))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $b (v128.load (local.get $src)))
        (v128.store (local.get $dst) (i32x4.shl (i32x4.extend_low_i16x8_u (local.get $b)) (i32.const 16)))
        (v128.store offset=16 (local.get $dst) (i32x4.shl (i32x4.extend_high_i16x8_u (local.get $b)) (i32.const 16)))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
        (br $next))))

  (func (export "f64_to_f32") (param $src i32) (param $dst i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 3))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (v128.store (local.get $dst)
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero (v128.load (local.get $src)))
            (f32x4.demote_f64x2_zero (v128.load offset=16 (local.get $src)))))
        (local.set $src (i32.add (local.get $src) (i32.const 32)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (br $next))))

  ;; Q8_0 as ggml's quantize_row_q8_0_ref: per 32 float32 values, d = amax/127 (stored as half)
  ;; and q = roundf(x · (1/d)). pmax keeps its first operand when the second is NaN, so NaN
  ;; values drop out of amax, as in the reference.
  (func (export "f32_to_q8_0") (param $src i32) (param $dst i32) (param $n i32)
    (local $end i32) (local $m v128) (local $d f32) (local $id v128) (local $j i32)
    (local $v v128) (local $av v128) (local $t v128) (local $q v128) (local $s v128)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $m (f32x4.pmax (v128.const i32x4 0 0 0 0) (f32x4.abs (v128.load (local.get $src)))))
        (local.set $m (f32x4.pmax (local.get $m) (f32x4.abs (v128.load offset=16 (local.get $src)))))
        (local.set $m (f32x4.pmax (local.get $m) (f32x4.abs (v128.load offset=32 (local.get $src)))))
        (local.set $m (f32x4.pmax (local.get $m) (f32x4.abs (v128.load offset=48 (local.get $src)))))
        (local.set $m (f32x4.pmax (local.get $m) (f32x4.abs (v128.load offset=64 (local.get $src)))))
        (local.set $m (f32x4.pmax (local.get $m) (f32x4.abs (v128.load offset=80 (local.get $src)))))
        (local.set $m (f32x4.pmax (local.get $m) (f32x4.abs (v128.load offset=96 (local.get $src)))))
        (local.set $m (f32x4.pmax (local.get $m) (f32x4.abs (v128.load offset=112 (local.get $src)))))
        (local.set $m (f32x4.pmax (local.get $m) (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $m) (local.get $m))))
        (local.set $m (f32x4.pmax (local.get $m) (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11 (local.get $m) (local.get $m))))
        (local.set $d (f32.div (f32x4.extract_lane 0 (local.get $m)) (f32.const 127)))
        (local.set $id
          (f32x4.splat (select (f32.div (f32.const 1) (local.get $d)) (f32.const 0) (f32.ne (local.get $d) (f32.const 0)))))
        (i32.store16 (local.get $dst) (i32x4.extract_lane 0 (call $f32x4_to_f16 (f32x4.splat (local.get $d)))))
        ;; 4 values at a time: roundf as trunc(|v|), plus one where the dropped fraction (exact in
        ;; float32) is at least a half, then the sign; |q| <= 127 becomes an integer by adding 2^23.
        ;; NaN and ±Inf give 0, as JavaScript's ToInt32 in the reference does (1/d overflows for tiny d).
        (local.set $j (i32.const 0))
        (loop $values
          (local.set $v (f32x4.mul (v128.load (i32.add (local.get $src) (local.get $j))) (local.get $id)))
          (local.set $av (f32x4.abs (local.get $v)))
          (local.set $t (f32x4.trunc (local.get $av)))
          (local.set $q
            (i32x4.sub
              (f32x4.add
                (f32x4.add (local.get $t)
                  (v128.and (f32x4.ge (f32x4.sub (local.get $av) (local.get $t)) (f32x4.splat (f32.const 0.5))) (f32x4.splat (f32.const 1))))
                (f32x4.splat (f32.const 0x1p23)))
              (i32x4.splat (i32.const 0x4b000000))))
          (local.set $s (i32x4.shr_s (local.get $v) (i32.const 31)))
          (local.set $q
            (v128.and
              (i32x4.sub (v128.xor (local.get $q) (local.get $s)) (local.get $s))
              (f32x4.lt (local.get $av) (f32x4.splat (f32.const inf)))))
          (local.set $q (i16x8.narrow_i32x4_s (local.get $q) (local.get $q)))
          (v128.store32_lane offset=2 0
            (i32.add (local.get $dst) (i32.shr_u (local.get $j) (i32.const 2)))
            (i8x16.narrow_i16x8_s (local.get $q) (local.get $q)))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br_if $values (i32.lt_u (local.get $j) (i32.const 128))))
        (local.set $src (i32.add (local.get $src) (i32.const 128)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 34)))
        (br $next))))
)
