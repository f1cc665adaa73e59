// lstm.cc — see lstm.h.
#include "model/lstm.h"

#include "core/gemm.h"
#include "core/kernels.h"
#include "core/vmath.h"

namespace manylm {

void lstm_forward(int64_t T, int64_t B, int64_t In, int64_t H, const float* X, const ElmanWeights& w, float* S,
                  float* C, float* Gt) {
  const int64_t G = 4 * H;
  gemm(Trans::N, Trans::T, T * B, G, In, 1.0f, X, In, w.w_ih, In, 0.0f, Gt, G);  // (T·B, 4H)
  add_bias_rows(Gt, T * B, G, w.b_ih, w.b_hh);
  for (int64_t t = 0; t < T; ++t) {
    float* g = Gt + t * B * G;
    gemm(Trans::N, Trans::T, B, G, H, 1.0f, S + t * B * H, H, w.w_hh, H, 1.0f, g, G);
    const float* cp = C + t * B * H;
    float* cn = C + (t + 1) * B * H;
    float* hn = S + (t + 1) * B * H;
#pragma omp parallel for schedule(static) if (B * H > (1 << 13))
    for (int64_t b = 0; b < B; ++b) {
      float* gb = g + b * G;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const float i = sigmoid_fast(gb[j]), f = sigmoid_fast(gb[H + j]), gg = tanh_fast(gb[2 * H + j]), o = sigmoid_fast(gb[3 * H + j]);
        const float c = f * cp[b * H + j] + i * gg;
        gb[j] = i;
        gb[H + j] = f;
        gb[2 * H + j] = gg;
        gb[3 * H + j] = o;
        cn[b * H + j] = c;
        hn[b * H + j] = o * tanh_fast(c);
      }
    }
  }
}

void lstm_backward(int64_t T, int64_t B, int64_t In, int64_t H, const float* X, const ElmanWeights& w, const float* S,
                   const float* C, const float* Gt, float* dA, float* dG, float* dC, ElmanGrads& g, float* dX) {
  const int64_t G = 4 * H;
  // dE/dc carried from t+1 to t; it starts at 0 (truncated BPTT).
  float* dCarry = dC;
  for (int64_t i = 0; i < B * H; ++i) dCarry[i] = 0.0f;
  for (int64_t t = T - 1; t >= 0; --t) {
    const float* gt = Gt + t * B * G;
    const float* cp = C + t * B * H;
    const float* cn = C + (t + 1) * B * H;
    float* dh = dA + t * B * H;
    float* dg = dG + t * B * G;
#pragma omp parallel for schedule(static) if (B * H > (1 << 13))
    for (int64_t b = 0; b < B; ++b) {
      const float* gb = gt + b * G;
      float* db = dg + b * G;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const float i = gb[j], f = gb[H + j], gg = gb[2 * H + j], o = gb[3 * H + j];
        const float tc = tanh_fast(cn[b * H + j]);
        const float d = dh[b * H + j];
        const float dc = d * o * (1.0f - tc * tc) + dCarry[b * H + j];
        db[j] = dc * gg * i * (1.0f - i);                 // d G_i
        db[H + j] = dc * cp[b * H + j] * f * (1.0f - f);  // d G_f
        db[2 * H + j] = dc * i * (1.0f - gg * gg);        // d G_g
        db[3 * H + j] = d * tc * o * (1.0f - o);          // d G_o
        dCarry[b * H + j] = dc * f;
      }
    }
    // dh[t-1] += dG[t] · W_hh
    if (t > 0) gemm(Trans::N, Trans::N, B, H, G, 1.0f, dg, G, w.w_hh, H, 1.0f, dA + (t - 1) * B * H, H);
  }
  recurrent_weight_grads(T, B, In, H, G, X, S, dG, dG, w, g, dX);
}

}  // namespace manylm
