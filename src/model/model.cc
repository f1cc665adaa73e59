// model.cc — see model.h.
#include "model/model.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include <omp.h>

#include "core/dropout.h"
#include "core/gemm.h"
#include "core/parallel.h"
#include "model/elman.h"
#include "model/full_score.h"
#include "model/gru.h"
#include "model/lstm.h"
#include "model/softmax.h"

namespace manylm {

std::vector<TensorSpec> workspace_table(const ModelShape& s, int64_t T, int64_t B, bool dropout, int64_t logit_rows) {
  std::vector<TensorSpec> t;
  const std::string L = "_l";
  t.push_back({"x0", {T, B, s.embed}});
  for (int64_t l = 0; l < s.layers; ++l) t.push_back({"S" + L + std::to_string(l), {T + 1, B, s.hidden}});
  t.push_back({"dA", {T, B, s.hidden}});
  t.push_back({"dX", {T, B, std::max(s.embed, s.hidden)}});
  t.push_back({"logits", {logit_rows < 0 ? T * B : std::max<int64_t>(logit_rows, 1), s.head_size()}});
  const int64_t GH = s.gates() * s.hidden;
  if (s.cell == Cell::Lstm) {
    for (int64_t l = 0; l < s.layers; ++l) t.push_back({"C" + L + std::to_string(l), {T + 1, B, s.hidden}});
    for (int64_t l = 0; l < s.layers; ++l) t.push_back({"G" + L + std::to_string(l), {T, B, GH}});
    t.push_back({"dG", {T, B, GH}});
    t.push_back({"dC", {B, s.hidden}});
  } else if (s.cell == Cell::Gru) {
    for (int64_t l = 0; l < s.layers; ++l) t.push_back({"G" + L + std::to_string(l), {T, B, GH}});
    for (int64_t l = 0; l < s.layers; ++l) t.push_back({"Gh" + L + std::to_string(l), {T, B, GH}});
    t.push_back({"dG", {T, B, GH}});
    t.push_back({"dGh", {T, B, GH}});
  }
  if (dropout)
    for (int64_t l = 0; l < s.layers; ++l) t.push_back({"D" + L + std::to_string(l), {T, B, s.hidden}});
  return t;
}

int64_t workspace_bytes(const ModelShape& s, int64_t T, int64_t B, bool dropout) {
  int64_t n = 0;
  for (const TensorSpec& t : workspace_table(s, T, B, dropout)) n += t.numel() * 4;
  if (dropout) n += T * B * (s.embed + s.layers * s.hidden);  // the masks, a byte each
  return n;
}

Workspace::Workspace(const ModelShape& s, int64_t T_, int64_t B_, bool dropout, int64_t logit_rows)
    : T(T_), B(B_), ix(param_index(s)), acts(workspace_table(s, T_, B_, dropout, logit_rows)) {
  // Each buffer's index, by its name in the one table above.
  for (size_t k = 0; k < acts.table().size(); ++k) {
    const std::string& name = acts.table()[k].name;
    const int i = static_cast<int>(k);
    const size_t u = name.find("_l");
    const std::string kind = name.substr(0, u);
    if (u != std::string::npos) {
      std::vector<int>& v = kind == "S" ? S : kind == "C" ? C : kind == "G" ? G : kind == "Gh" ? Gh : D;
      v.push_back(i);
    } else {
      int& f = kind == "x0"       ? x0
               : kind == "dA"     ? dA
               : kind == "dX"     ? dX
               : kind == "logits" ? logits
               : kind == "dG"     ? dG
               : kind == "dC"     ? dC
                                  : dGh;
      f = i;
    }
  }
  if (dropout) {
    masks.emplace_back(static_cast<size_t>(T * B * s.embed));
    for (int64_t l = 0; l < s.layers; ++l) masks.emplace_back(static_cast<size_t>(T * B * s.hidden));
  }
}

namespace {

ElmanWeights layer_weights(const Arena& p, const ParamIndex& ix, int64_t l) {
  return {p[ix.w_ih[l]].data, p[ix.w_hh[l]].data, p[ix.b_ih[l]].data, p[ix.b_hh[l]].data};
}

void embed_forward(const float* emb, int64_t E, const int32_t* x, int64_t n, float* out) {
  parallel_for(n, E > 0 ? (1 << 14) / E + 1 : n + 1, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) std::memcpy(out + i * E, emb + int64_t{x[i]} * E, E * sizeof(float));
  });
}

// d_emb[x[i]] += dx[i]; threads own column ranges, rows are added in order: deterministic.
void embed_backward(float* demb, int64_t E, const int32_t* x, int64_t n, const float* dx, RowGrad* rows) {
  if (rows) {
    rows->width = E;
    return scatter_rows(*rows, x, n, dx);
  }
  parallel_for(E, n > 0 ? (1 << 14) / n + 1 : E + 1, [=](int64_t c0, int64_t c1) {
    for (int64_t i = 0; i < n; ++i) {
      float* d = demb + int64_t{x[i]} * E;
      const float* s = dx + i * E;
      for (int64_t c = c0; c < c1; ++c) d[c] += s[c];
    }
  });
}

}  // namespace

namespace {

// Tells the engine which block holds the weights its products read (bf16: the block it keeps a copy of): all
// parameters after the embedding, which no product reads unless it is the tied decoder — so a V × E table is
// never converted per step.
void declare_constants(const Engine& e, const ModelShape& s, const Arena& params) {
  const size_t first = s.tied ? 0 : params.offset(1);
  e.use_constants(params.data() + first, params.size() - first);
}

// Embedding and the L recurrent layers; returns A_top, (T, B, H) inside the workspace.
bool active(const DropoutConfig* d) { return d && d->p > 0; }

// Adds the time since the previous lap to one field of PhaseTimes (nothing when times is null).
class Lap {
 public:
  explicit Lap(PhaseTimes* t)
      : t_(t), last_(t ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{}) {}
  void operator()(double PhaseTimes::*field) {
    if (!t_) return;
    const auto now = std::chrono::steady_clock::now();
    t_->*field += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  PhaseTimes* t_;
  std::chrono::steady_clock::time_point last_;
};

DropoutSite site(const DropoutConfig& d, uint32_t k) { return {d.seed, d.step, k, d.p, d.variational}; }

const float* forward_hidden(const Engine& e, const ModelShape& s, const Arena& params, Workspace& ws, const int32_t* x,
                            int64_t T, int64_t B, Arena& state, const DropoutConfig* drop, PhaseTimes* times) {
  Lap lap(times);
  const ParamIndex& ix = ws.ix;
  const int64_t E = s.embed, H = s.hidden;
  const bool dr = active(drop);
  const int64_t lanes = dr && drop->lanes > 0 ? drop->lanes : B;
  float* X = ws.acts[ws.x0].data;
  embed_forward(params[ix.encoder].data, E, x, T * B, X);  // (T, B, E)
  if (dr) dropout_forward(site(*drop, 0), T, B, E, drop->lane0, lanes, X, ws.masks[0].data());
  lap(&PhaseTimes::embed);
  PackedB* packed = e.packed_recurrent() ? &ws.packed : nullptr;
  const float* in = X;
  for (int64_t l = 0; l < s.layers; ++l) {
    float* S = ws.acts[ws.S[l]].data;                      // (T+1, B, H)
    std::memcpy(S, state[l].data, B * H * sizeof(float));  // S[0] = carried state
    const ElmanWeights w = layer_weights(params, ix, l);
    switch (s.cell) {
      case Cell::Elman: elman_forward(e, s.activation, T, B, s.layer_input(l), H, in, w, S, packed); break;
      case Cell::Lstm: {
        float* C = ws.acts[ws.C[l]].data;  // (T+1, B, H)
        std::memcpy(C, state[s.layers + l].data, B * H * sizeof(float));
        lstm_forward(e, T, B, s.layer_input(l), H, in, w, S, C, ws.acts[ws.G[l]].data, packed);
        std::memcpy(state[s.layers + l].data, C + T * B * H, B * H * sizeof(float));
        break;
      }
      case Cell::Gru:
        gru_forward(e, T, B, s.layer_input(l), H, in, w, S, ws.acts[ws.G[l]].data, ws.acts[ws.Gh[l]].data, packed);
        break;
    }
    std::memcpy(state[l].data, S + T * B * H, B * H * sizeof(float));  // carry A[T-1]
    in = S + B * H;
    if (dr) {  // the next layer (or the decoder) sees a dropped copy; the recurrence keeps A itself
      float* Dl = ws.acts[ws.D[l]].data;
      std::memcpy(Dl, in, T * B * H * sizeof(float));
      dropout_forward(site(*drop, static_cast<uint32_t>(l + 1)), T, B, H, drop->lane0, lanes, Dl,
                      ws.masks[l + 1].data());
      in = Dl;
    }
  }
  lap(&PhaseTimes::recurrent_fwd);
  return in;
}

// logits (R, V) = A_top · decoder.weightᵀ + decoder.bias
float* decode(const Engine& e, const ModelShape& s, const Arena& params, Workspace& ws, const float* top, int64_t R) {
  const ParamIndex& ix = ws.ix;
  float* Z = ws.acts[ws.logits].data;
  gemm(e, Trans::N, Trans::T, R, s.vocab, s.hidden, 1.0f, top, s.hidden, params[ix.decoder_w].data, s.hidden, 0.0f, Z,
       s.vocab);
  add_bias_rows(Z, R, s.vocab, params[ix.decoder_b].data, nullptr);
  return Z;
}

}  // namespace

double model_forward(const Engine& e, const ModelShape& s, const Arena& params, Workspace& ws, const int32_t* x,
                     const int32_t* y, int64_t T, int64_t B, Arena& state, bool for_backward, float* logp,
                     const DropoutConfig* drop, PhaseTimes* times) {
  declare_constants(e, s, params);
  const float* top = forward_hidden(e, s, params, ws, x, T, B, state, drop, times);
  Lap lap(times);
  const int64_t lanes = ws.objective_lanes > 0 ? ws.objective_lanes : B;
  const float scale = for_backward ? 1.0f / static_cast<float>(lanes) : 0.0f;
  double loss = 0;
  if (s.adaptive())
    loss = adaptive_forward(e, s, params, ws.ix, top, T * B, y, ws.acts[ws.logits].data, ws.adaptive, scale, logp);
  else
    loss = softmax_xent(decode(e, s, params, ws, top, T * B), T * B, s.vocab, y, scale, logp);
  lap(&PhaseTimes::output_fwd);
  return loss;
}

void model_backward(const Engine& e, const ModelShape& s, const Arena& params, Workspace& ws, const int32_t* x,
                    int64_t T, int64_t B, Arena& grads, const DropoutConfig* drop, PhaseTimes* times) {
  declare_constants(e, s, params);
  Lap lap(times);
  const ParamIndex& ix = ws.ix;
  const int64_t E = s.embed, H = s.hidden, V = s.vocab, L = s.layers;
  const bool dr = active(drop);
  // What layer l's output looked like to its consumer: the dropped copy, or A itself.
  auto output = [&](int64_t l) -> const float* { return dr ? ws.acts[ws.D[l]].data : ws.acts[ws.S[l]].data + B * H; };
  const float* dZ = ws.acts[ws.logits].data;  // (T·B, V), adaptive: the head's (T·B, C1+n)
  const float* top = output(L - 1);
  float* dA = ws.acts[ws.dA].data;  // (T, B, H)
  float* dX = ws.acts[ws.dX].data;  // (T, B, In)
  if (s.adaptive()) {
    adaptive_backward(e, s, params, ix, top, T * B, dZ, ws.adaptive, grads, dA);
  } else {
    // d decoder.weight += dZᵀ · A_top;  d decoder.bias += Σ dZ;  dA_top = dZ · decoder.weight
    gemm(e, Trans::T, Trans::N, V, H, T * B, 1.0f, dZ, V, top, H, 1.0f, grads[ix.decoder_w].data, H);
    colsum_add(grads[ix.decoder_b].data, dZ, T * B, V);
    gemm(e, Trans::N, Trans::N, T * B, H, V, 1.0f, dZ, V, params[ix.decoder_w].data, H, 0.0f, dA, H);
  }
  if (dr) dropout_backward(drop->p, ws.masks[L].data(), T * B * H, dA);
  // Gradients in table order after `k` are final (the table ends with the decoder's tensors).
  auto ready = [&](int k) {
    if (ws.grads_ready) ws.grads_ready(grads.offset(static_cast<size_t>(k)));
  };
  ready(ix.first_decoder);
  lap(&PhaseTimes::output_bwd);
  PackedB* packed = e.packed_recurrent() ? &ws.packed : nullptr;
  for (int64_t l = L - 1; l >= 0; --l) {
    const int64_t In = s.layer_input(l);
    const float* in = l == 0 ? ws.acts[ws.x0].data : output(l - 1);
    ElmanGrads g{grads[ix.w_ih[l]].data, grads[ix.w_hh[l]].data, grads[ix.b_ih[l]].data, grads[ix.b_hh[l]].data};
    const ElmanWeights w = layer_weights(params, ix, l);
    const float* S = ws.acts[ws.S[l]].data;
    switch (s.cell) {
      case Cell::Elman: elman_backward(e, s.activation, T, B, In, H, in, w, S, dA, g, dX, packed); break;
      case Cell::Lstm:
        lstm_backward(e, T, B, In, H, in, w, S, ws.acts[ws.C[l]].data, ws.acts[ws.G[l]].data, dA, ws.acts[ws.dG].data,
                      ws.acts[ws.dC].data, g, dX, packed);
        break;
      case Cell::Gru:
        gru_backward(e, T, B, In, H, in, w, S, ws.acts[ws.G[l]].data, ws.acts[ws.Gh[l]].data, dA, ws.acts[ws.dG].data,
                     ws.acts[ws.dGh].data, g, dX, packed);
        break;
    }
    if (dr) dropout_backward(drop->p, ws.masks[l].data(), T * B * In, dX);
    if (l > 0) std::memcpy(dA, dX, T * B * H * sizeof(float));  // becomes dA of the layer below
    ready(ix.w_ih[l]);
  }
  lap(&PhaseTimes::recurrent_bwd);
  embed_backward(ws.sparse_embedding ? nullptr : grads[ix.encoder].data, E, x, T * B, dX, ws.sparse_embedding);
  ready(ix.encoder);
  lap(&PhaseTimes::embed_bwd);
}

const float* model_step_logits(const Engine& e, const ModelShape& s, const Arena& params, Workspace& ws, int32_t x,
                               Arena& state) {
  declare_constants(e, s, params);
  const float* top = forward_hidden(e, s, params, ws, &x, 1, 1, state, nullptr, nullptr);
  if (s.adaptive()) return adaptive_log_probs(e, s, params, ws.ix, top, ws.acts[ws.logits].data, ws.adaptive);
  return decode(e, s, params, ws, top, 1);
}

double model_score_rows(const Engine& e, const ModelShape& s, const Arena& params, Workspace& ws, const int32_t* x,
                        int64_t T, int64_t B, Arena& state, const int32_t* rows, int64_t R, const int32_t* y,
                        float* logp, const int32_t* rep) {
  declare_constants(e, s, params);
  const float* top = forward_hidden(e, s, params, ws, x, T, B, state, nullptr, nullptr);  // (T, B, H)
  const int64_t H = s.hidden;
  if (R < T * B) {  // the rows that are scored, gathered into dA (T, B, H), unused by a forward pass
    float* g = ws.acts[ws.dA].data;
    parallel_for(R, (1 << 14) / H + 1, [=](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) std::memcpy(g + r * H, top + int64_t{rows[r]} * H, H * sizeof(float));
    });
    top = g;
  }
  if (s.adaptive())
    return adaptive_forward(e, s, params, ws.ix, top, R, y, ws.acts[ws.logits].data, ws.adaptive, 0.0f, logp);
  return full_softmax_score(e, top, R, H, params[ws.ix.decoder_w].data, params[ws.ix.decoder_b].data, s.vocab, y, logp,
                            rep);
}

void window_state(const ModelShape& s, const Workspace& ws, int64_t t, int64_t B, int64_t b, Arena& out, int64_t to) {
  const int64_t H = s.hidden;
  for (int64_t l = 0; l < s.layers; ++l) {
    std::memcpy(out[l].data + to * H, ws.acts[ws.S[l]].data + (t * B + b) * H, H * sizeof(float));
    if (s.cell == Cell::Lstm)
      std::memcpy(out[s.layers + l].data + to * H, ws.acts[ws.C[l]].data + (t * B + b) * H, H * sizeof(float));
  }
}

void model_step_log_probs(const Engine& e, const ModelShape& s, const Arena& params, Workspace& ws, const int32_t* x,
                          int64_t B, Arena& state, float* out) {
  declare_constants(e, s, params);
  const float* top = forward_hidden(e, s, params, ws, x, 1, B, state, nullptr, nullptr);  // (B, H)
  const int64_t V = s.vocab;
  if (!s.adaptive()) {
    const float* z = decode(e, s, params, ws, top, B);  // (B, V)
    std::memcpy(out, z, static_cast<size_t>(B * V) * sizeof(float));
    return log_softmax_rows(out, B, V);
  }
  for (int64_t b = 0; b < B; ++b) {
    const float* lp = adaptive_log_probs(e, s, params, ws.ix, top + b * s.hidden, ws.acts[ws.logits].data, ws.adaptive);
    std::memcpy(out + b * V, lp, static_cast<size_t>(V) * sizeof(float));
  }
}

}  // namespace manylm
