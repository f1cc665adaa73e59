// reference.h — the plain scalar reference of the whole model, templated on the number type (double for
// gradient checks). Straight loops, no GEMM, no threads, no workspace: written to be obviously right,
// not fast. The fast model (model.h) is tested against it, and it is tested against numerical gradients.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/dropout.h"
#include "model/model.h"
#include "model/shape.h"

namespace manylm {

template <typename T>
using RefTensors = std::vector<std::vector<T>>;  // in param_table() order

// Objective Σ_t mean_b −log p(y[t,b]); same as model_forward. h0: per layer (B·H), the initial state.
// If grads is non-null it receives the gradient (sized like params). With `drop`, every mask element
// comes from dropout_keep(), the definition.
template <typename T>
T reference_loss(const ModelShape& s, const RefTensors<T>& p, const std::vector<int32_t>& x,
                 const std::vector<int32_t>& y, int64_t Tn, int64_t B, const RefTensors<T>& h0, RefTensors<T>* grads,
                 const DropoutConfig* drop = nullptr) {
  const ParamIndex ix = param_index(s);
  const int64_t E = s.embed, H = s.hidden, V = s.vocab, L = s.layers;
  // Dropout multiplier of element (t, b, d) at site k: 0 or 1/(1−p).
  auto keep = [&](uint32_t k, int64_t t, int64_t b, int64_t D, int64_t d) -> T {
    if (!drop || drop->p == 0) return T(1);
    DropoutSite ds{drop->seed, drop->step, k, drop->p, drop->variational};
    return dropout_keep(ds, t, b, D, d, B) ? T(1) / (T(1) - T(drop->p)) : T(0);
  };
  // acts[l][t] (B·In) for l = 0 (embedding) .. L; acts[l+1][t] = σ(Y).
  std::vector<std::vector<std::vector<T>>> acts(L + 1, std::vector<std::vector<T>>(Tn));
  for (int64_t t = 0; t < Tn; ++t) {
    acts[0][t].resize(B * E);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t e = 0; e < E; ++e) acts[0][t][b * E + e] = p[ix.encoder][x[t * B + b] * E + e] * keep(0, t, b, E, e);
  }
  // ins(l, t): what layer l (or the decoder, l = L) reads: the dropped output of the level below.
  std::vector<std::vector<std::vector<T>>> ins(L + 1, std::vector<std::vector<T>>(Tn));
  auto dropped = [&](int64_t l, int64_t t) {  // level l ≥ 1 is layer l−1's output
    ins[l][t] = acts[l][t];
    for (int64_t b = 0; b < B; ++b)
      for (int64_t d = 0; d < H; ++d) ins[l][t][b * H + d] *= keep(static_cast<uint32_t>(l), t, b, H, d);
  };
  for (int64_t t = 0; t < Tn; ++t) ins[0][t] = acts[0][t];
  for (int64_t l = 0; l < L; ++l) {
    const int64_t In = s.layer_input(l);
    const auto &Wi = p[ix.w_ih[l]], &Wh = p[ix.w_hh[l]], &bi = p[ix.b_ih[l]], &bh = p[ix.b_hh[l]];
    for (int64_t t = 0; t < Tn; ++t) {
      const std::vector<T>& prev = t == 0 ? h0[l] : acts[l + 1][t - 1];
      acts[l + 1][t].assign(B * H, T(0));
      for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < H; ++j) {
          T yv = bi[j] + bh[j];
          for (int64_t k = 0; k < In; ++k) yv += ins[l][t][b * In + k] * Wi[j * In + k];
          for (int64_t k = 0; k < H; ++k) yv += prev[b * H + k] * Wh[j * H + k];
          acts[l + 1][t][b * H + j] = activate(s.activation, yv);
        }
      dropped(l + 1, t);
    }
  }
  T loss = T(0);
  std::vector<std::vector<T>> dtop(Tn, std::vector<T>(B * H, T(0)));
  if (grads) {
    grads->clear();
    for (auto& t : p) grads->push_back(std::vector<T>(t.size(), T(0)));
  }
  for (int64_t t = 0; t < Tn; ++t)
    for (int64_t b = 0; b < B; ++b) {
      std::vector<T> z(V);
      T m = T(-1e300);
      for (int64_t v = 0; v < V; ++v) {
        z[v] = p[ix.decoder_b][v];
        for (int64_t k = 0; k < H; ++k) z[v] += ins[L][t][b * H + k] * p[ix.decoder_w][v * H + k];
        if (z[v] > m) m = z[v];
      }
      T sum = T(0);
      for (int64_t v = 0; v < V; ++v) sum += std::exp(z[v] - m);
      const int32_t target = y[t * B + b];
      loss += (m + std::log(sum) - z[target]) / T(B);
      if (!grads) continue;
      for (int64_t v = 0; v < V; ++v) {
        T dz = (std::exp(z[v] - m) / sum - (v == target ? T(1) : T(0))) / T(B);
        (*grads)[ix.decoder_b][v] += dz;
        for (int64_t k = 0; k < H; ++k) {
          (*grads)[ix.decoder_w][v * H + k] += dz * ins[L][t][b * H + k];
          dtop[t][b * H + k] += dz * p[ix.decoder_w][v * H + k] * keep(static_cast<uint32_t>(L), t, b, H, k);
        }
      }
    }
  if (!grads) return loss;
  // Backward through time, layer by layer from the top.
  std::vector<std::vector<T>> dA = dtop;  // dE/dA of the current layer's outputs, per t
  for (int64_t l = L - 1; l >= 0; --l) {
    const int64_t In = s.layer_input(l);
    const auto &Wi = p[ix.w_ih[l]], &Wh = p[ix.w_hh[l]];
    std::vector<std::vector<T>> dIn(Tn, std::vector<T>(B * In, T(0)));
    std::vector<T> carry(B * H, T(0));
    for (int64_t t = Tn - 1; t >= 0; --t) {
      const std::vector<T>& prev = t == 0 ? h0[l] : acts[l + 1][t - 1];
      std::vector<T> next_carry(B * H, T(0));
      for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < H; ++j) {
          T dy = (dA[t][b * H + j] + carry[b * H + j]) *
                 activate_grad_from_output(s.activation, acts[l + 1][t][b * H + j]);
          (*grads)[ix.b_ih[l]][j] += dy;
          (*grads)[ix.b_hh[l]][j] += dy;
          for (int64_t k = 0; k < In; ++k) {
            (*grads)[ix.w_ih[l]][j * In + k] += dy * ins[l][t][b * In + k];
            dIn[t][b * In + k] += dy * Wi[j * In + k] * keep(static_cast<uint32_t>(l), t, b, In, k);
          }
          for (int64_t k = 0; k < H; ++k) {
            (*grads)[ix.w_hh[l]][j * H + k] += dy * prev[b * H + k];
            next_carry[b * H + k] += dy * Wh[j * H + k];
          }
        }
      carry = next_carry;  // truncated BPTT: the carry out of t = 0 is dropped
    }
    dA = dIn;
  }
  for (int64_t t = 0; t < Tn; ++t)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t e = 0; e < E; ++e) (*grads)[ix.encoder][x[t * B + b] * E + e] += dA[t][b * E + e];
  return loss;
}

}  // namespace manylm
