// gemm.h — the GEMM seam. Every matrix product in manylm goes through gemm(); the backend behind it is
// the Engine's (engine.h), not chosen at call sites. Row-major: C(M,N) = alpha * op(A)(M,K) · op(B)(K,N) + beta * C.
// Backends: Blas (OpenBLAS, OpenMP build), OneDnn (oneDNN's matmul primitive, primitives cached per call
// signature), Libxsmm (LIBXSMM's JIT kernels over tiles of C), Blis (BLIS, loaded at run time: it exports
// the same BLAS symbols as OpenBLAS), Auto (per call signature, the fastest backend and thread partition
// measured on this machine, the choice cached on disk: gemm_tune.cc) and Reference (plain loops, for tests).
// The backends themselves are private to core/ (gemm_backends.h); everything else names them by GemmBackend.
// Every backend uses the whole OpenMP team when called outside a parallel region, and runs on the calling
// thread alone when called inside one (manylm's own scheduling hands each thread its slice).
// Not a tensor library: callers pass raw pointers, leading dimensions and shapes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/names.h"

namespace manylm {

enum class Trans { N, T };
enum class GemmBackend { Blas, OneDnn, Libxsmm, Blis, Auto, Reference };
inline constexpr Named<GemmBackend> kGemmBackendNames[] = {
    {GemmBackend::Blas, "blas"}, {GemmBackend::OneDnn, "onednn"}, {GemmBackend::Libxsmm, "libxsmm"},
    {GemmBackend::Blis, "blis"}, {GemmBackend::Auto, "auto"},     {GemmBackend::Reference, "reference"}};
constexpr std::span<const Named<GemmBackend>> enum_names(GemmBackend) { return kGemmBackendNames; }

// Whether backend b can run here (BLIS: its library loads); false with the reason in *why.
bool gemm_backend_available(GemmBackend b, std::string* why = nullptr);

// Precision of the products: Fp32, or Bf16 — operands rounded to bfloat16 (round to nearest even),
// products accumulated in fp32, results in fp32 (oneDNN's bf16 matmul, AVX512_BF16). Master weights,
// gradients and every element-wise op stay fp32. Bf16 needs the onednn backend and a CPU with
// AVX512_BF16 (an Engine asked for Bf16 without it runs Fp32, and says so: Engine::precision()).
enum class Precision { Fp32, Bf16 };
inline constexpr Named<Precision> kPrecisionNames[] = {{Precision::Fp32, "fp32"}, {Precision::Bf16, "bf16"}};
constexpr std::span<const Named<Precision>> enum_names(Precision) { return kPrecisionNames; }
bool bf16_supported();  // this CPU has AVX512_BF16

class Engine;  // engine.h: the backend, precision, thread team and caches every product uses

void gemm(const Engine& e, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// One backend by name, bypassing the engine's choice and precision (the Auto tuner, benchmarks and tests
// use it); the engine lends its caches (oneDNN's primitives, Auto's plan).
void gemm_with(const Engine& e, GemmBackend b, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// float → bfloat16 bits, round to nearest even (NaN stays NaN); and back.
void to_bf16(const float* x, int64_t n, uint16_t* out);
inline float from_bf16(uint16_t b) {
  const uint32_t u = uint32_t{b} << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

// Plain triple loop, any number type; the reference every fast backend is tested against.
template <typename T>
void gemm_reference(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                    int64_t ldb, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      T acc = T(0);
      for (int64_t k = 0; k < K; ++k) {
        T a = ta == Trans::N ? A[i * lda + k] : A[k * lda + i];
        T b = tb == Trans::N ? B[k * ldb + j] : B[j * ldb + k];
        acc += a * b;
      }
      C[i * ldc + j] = alpha * acc + (beta == T(0) ? T(0) : beta * C[i * ldc + j]);
    }
}

}  // namespace manylm
