// gemm_onednn.cc — the oneDNN backend of the GEMM seam: oneDNN's matmul primitive (brgemm kernels, AVX-512
// on this machine). Primitive creation costs milliseconds, so each distinct call signature
// (transposes, M, N, K, leading dimensions, alpha, beta, thread count) creates its primitive once and caches it; a call
// only rebinds the data pointers. Row-major strides express the transposes; beta ≠ 0 is a sum post-op.
// Bf16: operands are rounded to bfloat16 into scratch buffers (the parameter block into the Engine's copy,
// remade only when the engine says it is stale: engine.h, use_constants), then oneDNN's bf16 matmul
// (brgemm, AVX512_BF16) accumulates in fp32 into the fp32 result.
// Called inside a parallel region (manylm's split scheduling), each thread gets primitives planned for one
// thread, its own memory objects, its own stream and its own bf16 scratch; the cache and the streams are behind a
// mutex.
// All of it is an Engine's (OneDnnState), made with the engine and gone with it.
#include <omp.h>

#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>

#include "core/gemm.h"
#include "core/gemm_backends.h"
#include "core/parallel.h"

namespace manylm {

namespace {

// A primitive is planned for the thread count current at its creation, so the count is part of the key;
// inside a parallel region the calling thread's number is too (its memory objects are its own).
using Key = std::tuple<int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float, int, bool, int>;

struct Prim {
  dnnl::matmul matmul;
  dnnl::memory a, b, c;
};

}  // namespace

struct OneDnnState {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::mutex mu;  // guards cache and team_streams
  std::map<Key, std::unique_ptr<Prim>> cache;
  std::vector<std::unique_ptr<dnnl::stream>> team_streams;  // by team thread number, made on its first call
  std::vector<uint16_t> scratch_a, scratch_b;               // bf16: the operands outside the parameter block
};

void StateDeleter::operator()(OneDnnState* p) const { delete p; }
std::unique_ptr<OneDnnState, StateDeleter> make_onednn_state() {
  return std::unique_ptr<OneDnnState, StateDeleter>(new OneDnnState);
}

namespace {

using OneDnn = OneDnnState;

Prim& primitive(OneDnn& d, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, int64_t lda, int64_t ldb,
                float beta, int64_t ldc, bool bf16) {
  using dnnl::memory;
  const bool inner = omp_in_parallel();
  const Key key{static_cast<int>(ta),
                static_cast<int>(tb),
                M,
                N,
                K,
                lda,
                ldb,
                ldc,
                alpha,
                beta,
                inner ? 1 : omp_get_max_threads(),
                bf16,
                inner ? omp_get_thread_num() : -1};
  std::lock_guard<std::mutex> lock(d.mu);
  auto it = d.cache.find(key);
  if (it == d.cache.end()) {
    const int outer_threads = omp_get_max_threads();
    if (inner) omp_set_num_threads(1);  // plan for the calling thread alone
    const auto f32 = memory::data_type::f32, in = bf16 ? memory::data_type::bf16 : f32;
    memory::desc a_md({M, K}, in, ta == Trans::N ? memory::dims{lda, 1} : memory::dims{1, lda});
    memory::desc b_md({K, N}, in, tb == Trans::N ? memory::dims{ldb, 1} : memory::dims{1, ldb});
    memory::desc c_md({M, N}, f32, memory::dims{ldc, 1});
    dnnl::primitive_attr attr;
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    if (beta != 0.0f) {
      dnnl::post_ops po;
      po.append_sum(beta);
      attr.set_post_ops(po);
    }
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), attr, d.engine);
    auto p = std::make_unique<Prim>(Prim{dnnl::matmul(pd), memory(a_md, d.engine, nullptr),
                                         memory(b_md, d.engine, nullptr), memory(c_md, d.engine, nullptr)});
    it = d.cache.emplace(key, std::move(p)).first;
    if (inner) omp_set_num_threads(outer_threads);
  }
  return *it->second;
}

// The calling team thread's own stream (inside a parallel region); the streams never move once made.
dnnl::stream* team_stream(OneDnn& d) {
  const auto tid = static_cast<size_t>(omp_get_thread_num());
  std::lock_guard<std::mutex> lock(d.mu);
  if (d.team_streams.size() <= tid) d.team_streams.resize(tid + 1);
  if (!d.team_streams[tid]) d.team_streams[tid] = std::make_unique<dnnl::stream>(d.engine);
  return d.team_streams[tid].get();
}

void run(OneDnn& d, Prim& p, const void* A, const void* B, float* C) {
  p.a.set_data_handle(const_cast<void*>(A));
  p.b.set_data_handle(const_cast<void*>(B));
  p.c.set_data_handle(C);
  dnnl::stream* s = omp_in_parallel() ? team_stream(d) : &d.stream;
  p.matmul.execute(*s, {{DNNL_ARG_SRC, p.a}, {DNNL_ARG_WEIGHTS, p.b}, {DNNL_ARG_DST, p.c}});
  s->wait();
}

// The bf16 operand for a stored (rows, cols) matrix with leading dimension ld: from the parameter
// block's copy when it lies inside it, else rounded into `scratch` with the same layout.
const uint16_t* bf16_operand(Bf16Constants& k, const float* X, int64_t rows, int64_t cols, int64_t ld,
                             std::vector<uint16_t>& scratch) {
  if (k.base && X >= k.base && X < k.base + k.n) {
#pragma omp critical(manylm_bf16_constants)  // team threads of a parallel region may be first to need the copy
    if (!k.fresh) {
      k.copy.resize(k.n);
      to_bf16(k.base, static_cast<int64_t>(k.n), k.copy.data());
      k.fresh = true;
    }
    return k.copy.data() + (X - k.base);
  }
  const size_t need = static_cast<size_t>((rows - 1) * ld + cols);
  if (scratch.size() < need) scratch.resize(need);
  if (ld == cols) {
    to_bf16(X, rows * cols, scratch.data());
  } else {
    uint16_t* out = scratch.data();
    parallel_for(rows, cols > 0 ? (1 << 16) / cols + 1 : rows + 1, [=](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) to_bf16(X + r * ld, cols, out + r * ld);
    });
  }
  return scratch.data();
}

}  // namespace

void gemm_onednn(OneDnnState& d, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  run(d, primitive(d, ta, tb, M, N, K, alpha, lda, ldb, beta, ldc, false), A, B, C);
}

void gemm_onednn_bf16(OneDnnState& d, Bf16Constants& k, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K,
                      float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                      int64_t ldc) {
  // Inside a parallel region each team thread rounds into its own scratch (the team's threads run products at once).
  thread_local std::vector<uint16_t> own_a, own_b;
  const bool team = omp_in_parallel();
  std::vector<uint16_t>& sa = team ? own_a : d.scratch_a;
  std::vector<uint16_t>& sb = team ? own_b : d.scratch_b;
  const uint16_t* a = ta == Trans::N ? bf16_operand(k, A, M, K, lda, sa) : bf16_operand(k, A, K, M, lda, sa);
  const uint16_t* b = tb == Trans::N ? bf16_operand(k, B, K, N, ldb, sb) : bf16_operand(k, B, N, K, ldb, sb);
  run(d, primitive(d, ta, tb, M, N, K, alpha, lda, ldb, beta, ldc, true), a, b, C);
}

void to_bf16(const float* x, int64_t n, uint16_t* out) {
  // Round to nearest even on the bit pattern; a NaN keeps a quiet NaN. The loop vectorizes.
  parallel_for(n, (1 << 18) + 1, [=](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      uint32_t u;
      __builtin_memcpy(&u, x + i, 4);
      const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
      const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
      out[i] = static_cast<uint16_t>(nan ? ((u >> 16) | 0x40u) : r);
    }
  });
}

}  // namespace manylm
