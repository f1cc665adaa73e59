// gemm.h — the GEMM seam. Every matrix product in manylm goes through gemm(); the backend behind it is
// chosen here, not at call sites. Row-major: C(M,N) = alpha * op(A)(M,K) · op(B)(K,N) + beta * C.
// Backends: Blas (OpenBLAS, OpenMP build), OneDnn (oneDNN's matmul primitive, primitives cached per call
// signature) and Reference (plain loops, templated, for tests).
// Not a tensor library: callers pass raw pointers, leading dimensions and shapes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace manylm {

enum class Trans { N, T };
enum class GemmBackend { Blas, OneDnn, Reference };
GemmBackend parse_gemm_backend(const std::string& s);  // blas | onednn | reference
const char* gemm_backend_name(GemmBackend b);

void set_gemm_backend(GemmBackend b);
GemmBackend gemm_backend();

// Precision of the products: Fp32, or Bf16 — operands rounded to bfloat16 (round to nearest even),
// products accumulated in fp32, results in fp32 (oneDNN's bf16 matmul, AVX512_BF16). Master weights,
// gradients and every element-wise op stay fp32. Bf16 needs the onednn backend and a CPU with
// AVX512_BF16 (set_gemm_precision returns false, and changes nothing, otherwise).
enum class Precision { Fp32, Bf16 };
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

void gemm_onednn(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
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
