// gemm_libxsmm.cc — the LIBXSMM backend of the GEMM seam: LIBXSMM 1.17's JIT kernels (column-major
// small-matrix multiply: C = L·R or L·Rᵀ) over tiles of C, the tiles split statically over the OpenMP team.
//
// What 1.17 JITs on this AVX2 machine: no transpose, or a transposed right operand (TRANS_B); alpha = 1;
// beta 0 or 1. It returns NULL for a transposed left operand (TRANS_A), alpha ≠ 1 or any other beta.
// Two ways to put the row-major product C = op(A)·op(B) on such kernels:
//   Cᵀ form: column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, written straight into C. Left operand op(B)ᵀ: B as stored
//     when tb = N, B transposed into the pack when tb = T; right operand: A in place, TRANS_B when ta = T.
//   C form: column-major C = op(A)·op(B) into a scratch tile, transposed into C. Left operand op(A): A as
//     stored when ta = T, A transposed into the pack when ta = N; right operand: B in place, TRANS_B when tb = N.
// tb = N takes the Cᵀ form; tb = T the one that moves fewer elements (Cᵀ: N·K of B packed; C: M·K of A packed
// plus M·N of C transposed — the forward product x·Wᵀ with few rows takes the C form).
// Packing: with several right tiles the whole left operand is packed once (all of K, leading dimension
// kTileL; the team packs its share, then meets at a barrier), the tiles run right-major, and a TRANS_B right
// tile (rows far apart in memory) is copied once per tile column into a per-thread pack. With one right tile
// each left tile is read once: in place, or transposed into a per-thread pack when it must be.
// beta ∉ {0, 1} scales the tile of C first (Cᵀ form, alpha = 1); otherwise alpha and beta are applied when
// the scratch tile is combined into C.
// Each element of C is computed by one thread in a fixed order, so results do not depend on the team size.
// Not a tuned GEMM: tile sizes are fixed, and the right operand is read in place when not TRANS_B.
#include <libxsmm.h>
#include <omp.h>
#ifdef __AVX__
#include <immintrin.h>
#endif

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "core/gemm.h"
#include "core/gemm_backends.h"
#include "core/parallel.h"

namespace manylm {

namespace {

// Tile sizes: the best of a coarse sweep (64–256 × 32–128 × 64–512) on the training shapes, one AVX2 core.
constexpr int64_t kTileL = 128;  // kernel m: rows of the left operand per tile
constexpr int64_t kTileR = 64;   // kernel n: columns of the right operand per tile
constexpr int64_t kTileK = 128;  // depth per kernel call; later blocks accumulate (beta = 1)

void init_once() {
  static const bool done = (libxsmm_init(), true);  // thread-safe static initialization
  (void)done;
}

// dst(p, r) = src(r, p) for r < rows, p < cols; src with leading dimension lds, dst with ldd.
void transpose(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst, int64_t ldd) {
  int64_t r = 0;
#ifdef __AVX__
  for (; r + 8 <= rows; r += 8) {  // 8 × 8 blocks in registers
    int64_t p = 0;
    for (; p + 8 <= cols; p += 8) {
      const float* s = src + r * lds + p;
      const __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + lds), r2 = _mm256_loadu_ps(s + 2 * lds);
      const __m256 r3 = _mm256_loadu_ps(s + 3 * lds), r4 = _mm256_loadu_ps(s + 4 * lds);
      const __m256 r5 = _mm256_loadu_ps(s + 5 * lds), r6 = _mm256_loadu_ps(s + 6 * lds);
      const __m256 r7 = _mm256_loadu_ps(s + 7 * lds);
      const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
      const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
      const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
      const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      float* d = dst + p * ldd + r;
      _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(d + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(d + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(d + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(d + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(d + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(d + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(d + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (; p < cols; ++p)
      for (int64_t q = r; q < r + 8; ++q) dst[p * ldd + q] = src[q * lds + p];
  }
#endif
  for (; r < rows; ++r)
    for (int64_t p = 0; p < cols; ++p) dst[p * ldd + r] = src[r * lds + p];
}

// One call in the kernels' terms, and its kernels. The kernel computes the column-major (m, n) tile
// L(m, k)·R(k, n). A kernel is indexed by [left edge][right edge][k edge][beta = 1], an "edge" tile being the
// remainder tile of its dimension; all are dispatched on the calling thread before any tile runs, so once
// per call, not per tile, and a failure is reported outside the team.
struct Call {
  int64_t m = 0, n = 0, K = 0;  // rows of L (N in the Cᵀ form, M in the C form), columns of R, depth
  // L: element (r, p) at L[p * ldl + r] when left_colmajor, else at L[r * ldl + p] (then transposed into the pack)
  const float* L = nullptr;
  int64_t ldl = 0;
  bool left_colmajor = true, pack_left = true;
  // R: element (p, c) at R[c * ldr + p], or R[p * ldr + c] when right_trans (TRANS_B)
  const float* R = nullptr;
  int64_t ldr = 0;
  bool right_trans = false;
  // Several right tiles (tiles_r > 1): every left tile is packed once, up front, into lpack (the team
  // shares it), the tiles run right-major, and a TRANS_B right tile is copied once into a per-thread pack.
  bool full_left = false, pack_right = false;
  float* lpack = nullptr;  // (tiles_l, K, kTileL)
  bool c_form = false;     // the tile is C's (m = M), not Cᵀ's: it goes through the scratch, transposed
  float* C = nullptr;      // row-major (M, N)
  int64_t ldc = 0;
  float alpha = 1, beta = 0;
  bool to_scratch = false;  // kernels write the scratch tile (C form, or alpha ≠ 1), combined into C after
  bool pad_m = false;       // packed left, scratch tile: the left edge tile rounded up to 8 rows
                            // (LIBXSMM's masked kernels for m % 8 ≠ 0 run at half speed)
  bool first_zero = false;  // the first k block runs with beta = 0
  int64_t tiles_l = 0, tiles_r = 0, blocks_k = 0;
  libxsmm_smmfunction kernel[2][2][2][2] = {};
};

int64_t extent(int64_t n, int64_t tile, int edge) { return edge ? n % tile : (n >= tile ? tile : 0); }

void dispatch_kernels(Call& c) {
  const libxsmm_blasint lda = c.pack_left ? kTileL : c.ldl, ldb = c.pack_right ? kTileR : c.ldr;
  const libxsmm_blasint ldc = c.to_scratch ? kTileL : c.ldc;
  const int flags = c.right_trans ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
  const int prefetch = LIBXSMM_PREFETCH_NONE;
  const float one = 1.0f;
  bool need[2][2] = {};  // [k edge][beta = 1]
  for (int64_t q = 0; q < c.blocks_k; ++q) need[(q + 1) * kTileK > c.K][q == 0 && c.first_zero ? 0 : 1] = true;
  for (int el = 0; el < 2; ++el)
    for (int er = 0; er < 2; ++er)
      for (int ek = 0; ek < 2; ++ek)
        for (int b1 = 0; b1 < 2; ++b1) {
          int64_t m = extent(c.m, kTileL, el);
          const int64_t n = extent(c.n, kTileR, er), k = extent(c.K, kTileK, ek);
          if (!need[ek][b1] || m == 0 || n == 0 || k == 0) continue;
          if (c.pad_m) m = (m + 7) / 8 * 8;
          const float beta = b1 ? 1.0f : 0.0f;
          c.kernel[el][er][ek][b1] = libxsmm_smmdispatch(m, n, k, &lda, &ldb, &ldc, &one, &beta, &flags, &prefetch);
          if (!c.kernel[el][er][ek][b1])
            throw std::runtime_error(
                fmt::format("LIBXSMM ({}) has no kernel for m={} n={} k={} lda={} ldb={} ldc={} "
                            "flags={} beta={}",
                            libxsmm_get_target_arch(), m, n, k, lda, ldb, ldc, flags, beta));
        }
}

// Left tile lt, all of K, column-major with leading dimension kTileL.
void pack_left_tile(const Call& c, int64_t lt, float* dst) {
  const int64_t r0 = lt * kTileL, mb = std::min(kTileL, c.m - r0);
  if (c.left_colmajor)
    for (int64_t p = 0; p < c.K; ++p) std::copy_n(c.L + p * c.ldl + r0, mb, dst + p * kTileL);
  else
    transpose(c.L + r0 * c.ldl, c.ldl, mb, c.K, dst, kTileL);
}

// Tiles [t0, t1): left-major (t / tiles_r, t % tiles_r), or right-major when full_left.
void run_tiles(const Call& c, int64_t t0, int64_t t1) {
  thread_local std::vector<float> pack;      // (K, kTileL): the current left tile, column-major
  thread_local std::vector<float> scratch;   // (kTileR, kTileL): the kernel's tile when it is not C itself
  thread_local std::vector<float> scratch2;  // (kTileL, kTileR): the C form's tile, transposed to C's layout
  thread_local std::vector<float> rpack;     // (K, kTileR): the current right tile, when copied
  if (c.pack_left && !c.full_left && pack.size() < static_cast<size_t>(c.K * kTileL)) pack.resize(c.K * kTileL);
  if (c.pack_right && rpack.size() < static_cast<size_t>(c.K * kTileR)) rpack.resize(c.K * kTileR);
  if (c.to_scratch && scratch.size() < static_cast<size_t>(kTileL * kTileR)) scratch.resize(kTileL * kTileR);
  if (c.c_form && scratch2.size() < static_cast<size_t>(kTileL * kTileR)) scratch2.resize(kTileL * kTileR);
  int64_t packed = -1, rpacked = -1;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t lt = c.full_left ? t % c.tiles_l : t / c.tiles_r, rt = c.full_left ? t / c.tiles_l : t % c.tiles_r;
    const int64_t r0 = lt * kTileL, c0 = rt * kTileR;
    const int64_t mb = std::min(kTileL, c.m - r0), nb = std::min(kTileR, c.n - c0);  // the kernel's tile
    const int el = mb < kTileL, er = nb < kTileR;
    if (c.pack_left && !c.full_left && packed != lt) {
      pack_left_tile(c, lt, pack.data());
      packed = lt;
    }
    if (c.pack_right && rpacked != rt) {
      for (int64_t p = 0; p < c.K; ++p) std::copy_n(c.R + p * c.ldr + c0, nb, rpack.data() + p * kTileR);
      rpacked = rt;
    }
    const float* lbase = c.full_left ? c.lpack + lt * c.K * kTileL : pack.data();
    // The tile of row-major C: rows i0.., columns j0.., (rows, cols).
    const int64_t i0 = c.c_form ? r0 : c0, j0 = c.c_form ? c0 : r0;
    const int64_t rows = c.c_form ? mb : nb, cols = c.c_form ? nb : mb;
    float* Ct = c.C + i0 * c.ldc + j0;
    if (!c.to_scratch && c.beta != 0.0f && c.beta != 1.0f)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) Ct[i * c.ldc + j] *= c.beta;
    float* out = c.to_scratch ? scratch.data() : Ct;
    for (int64_t q = 0; q < c.blocks_k; ++q) {
      const int64_t k0 = q * kTileK;
      const int ek = k0 + kTileK > c.K;
      const float* left = c.pack_left ? lbase + k0 * kTileL : c.L + k0 * c.ldl + r0;
      const float* right = c.pack_right    ? rpack.data() + k0 * kTileR
                           : c.right_trans ? c.R + k0 * c.ldr + c0
                                           : c.R + c0 * c.ldr + k0;
      c.kernel[el][er][ek][q == 0 && c.first_zero ? 0 : 1](left, right, out);
    }
    if (!c.to_scratch) continue;
    const float* P = scratch.data();  // the product tile, row-major (rows, cols) with leading dim kTileL or kTileR
    int64_t ldp = kTileL;
    if (c.c_form) {
      if (c.alpha == 1.0f && c.beta == 0.0f) {
        transpose(scratch.data(), kTileL, nb, mb, Ct, c.ldc);
        continue;
      }
      transpose(scratch.data(), kTileL, nb, mb, scratch2.data(), kTileR);
      P = scratch2.data();
      ldp = kTileR;
    }
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        float& y = Ct[i * c.ldc + j];
        y = c.alpha * P[i * ldp + j] + (c.beta == 0.0f ? 0.0f : c.beta * y);
      }
  }
}

// C = beta·C (beta = 0: zeros, C not read): the whole product when K = 0 or alpha = 0.
void scale_only(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  parallel_for(M, N > 0 ? (1 << 16) / N + 1 : M + 1, [=](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
  });
}

}  // namespace

void gemm_libxsmm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    scale_only(M, N, beta, C, ldc);
    return;
  }
  init_once();
  Call c;
  c.K = K;
  c.C = C;
  c.ldc = ldc;
  c.alpha = alpha;
  c.beta = beta;
  c.c_form = tb == Trans::T && M * (K + N) < N * K;
  if (!c.c_form) {  // Cᵀ = op(B)ᵀ·op(A)ᵀ
    c.m = N, c.n = M;
    c.L = B, c.ldl = ldb, c.left_colmajor = tb == Trans::N;
    c.R = A, c.ldr = lda, c.right_trans = ta == Trans::T;
  } else {  // C = op(A)·op(B)
    c.m = M, c.n = N;
    c.L = A, c.ldl = lda, c.left_colmajor = ta == Trans::T;
    c.R = B, c.ldr = ldb, c.right_trans = tb == Trans::N;
  }
  c.tiles_l = (c.m + kTileL - 1) / kTileL;
  c.tiles_r = (c.n + kTileR - 1) / kTileR;
  c.blocks_k = (K + kTileK - 1) / kTileK;
  c.pack_left = !c.left_colmajor || c.tiles_r > 1;  // a left tile in place when it is read once
  c.full_left = c.tiles_r > 1;
  c.pack_right = c.full_left && c.right_trans;
  c.to_scratch = c.c_form || alpha != 1.0f;
  c.first_zero = c.to_scratch || beta == 0.0f;
  c.pad_m = c.pack_left && c.to_scratch;
  dispatch_kernels(c);
  thread_local std::vector<float> lpack;  // the calling thread's; the team reads it during this call only
  if (c.full_left) {
    if (lpack.size() < static_cast<size_t>(c.tiles_l * K * kTileL)) lpack.resize(c.tiles_l * K * kTileL);
    c.lpack = lpack.data();
  }
  const int64_t tiles = c.tiles_l * c.tiles_r;
  if (omp_in_parallel() || omp_get_max_threads() == 1 || tiles == 1) {
    for (int64_t lt = 0; c.full_left && lt < c.tiles_l; ++lt) pack_left_tile(c, lt, c.lpack + lt * K * kTileL);
    run_tiles(c, 0, tiles);
    return;
  }
#pragma omp parallel
  {
    const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
    if (c.full_left) {
      const auto [l0, l1] = static_range(c.tiles_l, tid, nt);
      for (int64_t lt = l0; lt < l1; ++lt) pack_left_tile(c, lt, c.lpack + lt * K * kTileL);
#pragma omp barrier
    }
    const auto [t0, t1] = static_range(tiles, tid, nt);
    run_tiles(c, t0, t1);
  }
}

}  // namespace manylm
