/*
 * Exact cosine over int8 vectors held in memory (exact-vectors.ts): for each of n stored
 * vectors (codes of `dims` int8 each, one after another, and a float scale each), the integer
 * dot product with a query cut to int16, then scaled:
 *   out[i] = ((float)dot * qscale) * scales[i]
 * The sum is of integers, so every instruction set gives the same bits, and so does
 * int8-dot.ts's JavaScript loop (the fallback when no C compiler built this). The caller
 * keeps |query codes| <= 2^31 / (128 * dims), so the int32 sum cannot overflow.
 *
 * Why native: a store of 50,000 chunks is 25.6M multiply-adds a search; the JavaScript loop
 * does about one per nanosecond, AVX2 does 16 per instruction.
 */
#pragma GCC optimize("O3")
#include <stddef.h>
#include <stdint.h>

/* Raised with every change of ragd_int8_dots' arguments (see bm25-kernel.c's). */
int32_t ragd_int8_dot_abi(void) { return 1; }

#define DOTS_BODY                                                                  \
  for (int32_t i = 0; i < n; i++) {                                                \
    const int8_t *c = codes + (size_t)i * (size_t)dims;                            \
    int32_t acc = 0;                                                               \
    for (int32_t j = 0; j < dims; j++) acc += (int32_t)q[j] * (int32_t)c[j];       \
    out[i] = ((float)acc * qscale) * scales[i];                                    \
  }

static void dots_base(const int8_t *codes, const float *scales, int32_t n, int32_t dims, const int16_t *q, float qscale, float *out) { DOTS_BODY }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>

__attribute__((target("avx2"))) static void dots_avx2(const int8_t *codes, const float *scales, int32_t n, int32_t dims, const int16_t *q, float qscale, float *out) { DOTS_BODY }

/* AVX2 needs the CPU's AVX and AVX2 flags and the OS saving the wide registers (OSXSAVE,
 * then XCR0 bits 1 and 2). (__cpuid_count, not __get_cpuid_count: older compilers lack it.) */
static int has_avx2(void) {
  unsigned a, b, c, d;
  if (__get_cpuid_max(0, 0) < 7) return 0;
  __cpuid(1, a, b, c, d);
  if (!(c & (1u << 27)) || !(c & (1u << 28))) return 0;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 6) != 6) return 0;
  __cpuid_count(7, 0, a, b, c, d);
  return (b & (1u << 5)) != 0;
}
#else
static int has_avx2(void) { return 0; }
#define dots_avx2 dots_base
#endif

typedef void (*dots_fn)(const int8_t *, const float *, int32_t, int32_t, const int16_t *, float, float *);
static dots_fn chosen;

void ragd_int8_dots(const int8_t *codes, const float *scales, int32_t n, int32_t dims, const int16_t *q, float qscale, float *out) {
  if (!chosen) chosen = has_avx2() ? dots_avx2 : dots_base;
  chosen(codes, scales, n, dims, q, qscale, out);
}
