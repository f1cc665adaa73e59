// gemm.h — the GEMM seam. Every matrix product in manylm goes through gemm(); the backend behind it is
// chosen here, not at call sites. Row-major: C(M,N) = alpha * op(A)(M,K) · op(B)(K,N) + beta * C.
// Backends: Blas (OpenBLAS, OpenMP build), OneDnn (oneDNN's matmul primitive, primitives cached per call
// signature), Libxsmm (LIBXSMM's JIT kernels over tiles of C), Blis (BLIS, loaded at run time: it exports
// the same BLAS symbols as OpenBLAS), Auto (per call signature, the fastest backend and thread partition
// measured on this machine, the choice cached on disk: gemm_tune.cc) and Reference (plain loops, for tests).
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
GemmBackend parse_gemm_backend(const std::string& s);  // blas | onednn | libxsmm | blis | auto | reference
const char* gemm_backend_name(GemmBackend b);

void set_gemm_backend(GemmBackend b);
GemmBackend gemm_backend();
// Whether backend b can run here (BLIS: its library loads); false with the reason in *why.
bool gemm_backend_available(GemmBackend b, std::string* why = nullptr);

// Precision of the products: Fp32, or Bf16 — operands rounded to bfloat16 (round to nearest even),
// products accumulated in fp32, results in fp32 (oneDNN's bf16 matmul, AVX512_BF16). Master weights,
// gradients and every element-wise op stay fp32. Bf16 needs the onednn backend and a CPU with
// AVX512_BF16 (set_gemm_precision returns false, and changes nothing, otherwise).
enum class Precision { Fp32, Bf16 };
inline constexpr Named<Precision> kPrecisionNames[] = {{Precision::Fp32, "fp32"}, {Precision::Bf16, "bf16"}};
constexpr std::span<const Named<Precision>> enum_names(Precision) { return kPrecisionNames; }
Precision parse_precision(const std::string& s);  // fp32 | bf16
bool set_gemm_precision(Precision p);
Precision gemm_precision();

// Bf16: operands inside [base, base + n) — the parameter block — are read from a bf16 copy made once
// per change instead of being converted at every product (a recurrent weight is used 2T times per
// step). The trainer declares the block once and calls gemm_constants_changed() after every update.
void set_gemm_constants(const float* base, size_t n);  // nullptr: none
void gemm_constants_changed();

void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// One backend by name, bypassing the global choice (the Auto tuner and benchmarks use it).
void gemm_with(GemmBackend b, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Per call signature: calls and seconds spent in gemm() while profiling is on (bench train --gemm-profile).
struct GemmProfileEntry {
  std::string signature;  // e.g. "NT 20x2600x650"
  int64_t M, N, K;
  int64_t calls;
  double seconds;
  std::string variant;  // what ran: a backend name, or Auto's choice
};
void gemm_profile(bool on);  // on: clears the counters
std::vector<GemmProfileEntry> gemm_profile_entries();  // largest total time first

// Auto: the choice for a signature is made by timing every available backend, each both with the whole
// team inside the library and with manylm's split (the team divides C's columns, each thread runs the
// backend alone on its slice), on the call's own operands; it is kept per machine (CPU model, thread
// count) in PATH (default: <cache dir>/gemm-plan.json) and reused by later runs.
void set_gemm_plan_path(const std::string& path);
std::string gemm_plan_path();
std::string gemm_auto_choice(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                             int64_t ldc, float alpha, float beta);  // "" when not yet tuned

void gemm_onednn(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_libxsmm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_blis(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
bool blis_available(std::string* why);
void gemm_onednn_bf16(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                      const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

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
void gemm_reference(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                    const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
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
