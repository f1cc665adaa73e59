// gemm.h — the GEMM seam. Every matrix product in manylm goes through gemm(); the backend behind it is
// chosen here, not at call sites. Row-major: C(M,N) = alpha * op(A)(M,K) · op(B)(K,N) + beta * C.
// Backends: Blas (OpenBLAS, OpenMP build), OneDnn (oneDNN's matmul primitive, primitives cached per call
// signature) and Reference (plain loops, templated, for tests).
// Not a tensor library: callers pass raw pointers, leading dimensions and shapes.
#pragma once
#include <cstdint>
#include <string>

namespace manylm {

enum class Trans { N, T };
enum class GemmBackend { Blas, OneDnn, Reference };
GemmBackend parse_gemm_backend(const std::string& s);  // blas | onednn | reference
const char* gemm_backend_name(GemmBackend b);

void set_gemm_backend(GemmBackend b);
GemmBackend gemm_backend();

void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

void gemm_onednn(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

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
