// model_test.cc — the model three ways: the fast float model against the plain double reference
// (loss, every gradient, carried state), and the reference against central differences in double,
// for every activation and for 1 and 2 layers.
#include "model/model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/engine.h"
#include "core/gemm.h"
#include "core/packed_gemm.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "model/full_score.h"
#include "model/reference.h"
#include "model/softmax.h"
#include "test_util.h"

namespace manylm {
namespace {

struct Case {
  Activation act;
  int64_t layers;
  int64_t embed;
  int64_t vocab = 13;
  int64_t hidden = 6;
  int64_t T = 4, B = 3;
  float dropout = 0;
  bool variational = false;
  Cell cell = Cell::Elman;
  bool tied = false;
  std::vector<int64_t> cutoffs = {};  // non-empty: an adaptive softmax
  double div_value = 2.0;
  bool head_bias = false;
};

DropoutConfig dropout_of(const Case& c) { return {c.dropout, c.variational, 77, 5, 0, 0}; }

void PrintTo(const Case& c, std::ostream* os) {
  *os << cell_name(c.cell) << " " << activation_name(c.act) << " L" << c.layers << " V" << c.vocab << " dropout "
      << c.dropout;
}

class ModelGrad : public ::testing::TestWithParam<Case> {};     // fast model vs reference
class ModelNumeric : public ::testing::TestWithParam<Case> {};  // reference vs central differences

ModelShape small_shape(const Case& c) {
  ModelShape s;
  s.activation = c.act;
  s.cell = c.cell;
  s.tied = c.tied;
  s.vocab = c.vocab;
  s.embed = c.embed;
  s.hidden = c.hidden;
  s.layers = c.layers;
  if (!c.cutoffs.empty()) {
    s.output = Output::Adaptive;
    s.cutoffs = c.cutoffs;
    s.div_value = c.div_value;
    s.head_bias = c.head_bias;
  }
  return s;
}

void random_tokens(std::vector<int32_t>& v, size_t n, int64_t V, uint64_t seed) {
  CounterRng r{seed, 3};
  v.resize(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<int32_t>(r.uniform(i) * static_cast<float>(V)) % static_cast<int32_t>(V);
}

TEST_P(ModelGrad, FastMatchesReference) {
  const ModelShape s = small_shape(GetParam());
  const int64_t T = GetParam().T, B = GetParam().B;
  Arena params(param_table(s)), grads(param_table(s)), state(state_table(s, B));
  init_uniform(params, 7, 0.5);
  std::vector<int32_t> x, y;
  random_tokens(x, T * B, s.vocab, 1);
  random_tokens(y, T * B, s.vocab, 2);
  CounterRng hr{9, 9};
  for (size_t l = 0; l < state.table().size(); ++l)
    for (int64_t i = 0; i < B * s.hidden; ++i) state[l].data[i] = 0.8f * hr.uniform(l * 1000 + i) - 0.4f;
  RefTensors<double> p, h0, g;
  for (size_t k = 0; k < params.table().size(); ++k) p.emplace_back(params[k].data, params[k].data + params[k].numel());
  for (size_t l = 0; l < state.table().size(); ++l) h0.emplace_back(state[l].data, state[l].data + B * s.hidden);
  const DropoutConfig rdrop = dropout_of(GetParam());
  const double ref_loss = reference_loss(s, p, x, y, T, B, h0, &g, &rdrop);

  const DropoutConfig drop = dropout_of(GetParam());
  const std::vector<float> state0(state.flat().begin(), state.flat().end());
  // Both time loops: the packed kernel in one parallel region, and a gemm() call per step.
  for (bool packed : {true, false}) {
    SCOPED_TRACE(packed ? "packed recurrent products" : "gemm() per step");
    EngineOptions o = test_util::engine_options();
    o.packed_recurrent = packed;
    const Engine e(o);
    ASSERT_EQ(e.packed_recurrent(), packed);
    std::copy(state0.begin(), state0.end(), state.flat().begin());
    grads.zero();
    Workspace ws(s, T, B, drop.p > 0);
    const double loss = model_forward(e, s, params, ws, x.data(), y.data(), T, B, state, true, nullptr, &drop) / B;
    model_backward(e, s, params, ws, x.data(), T, B, grads, &drop);
    EXPECT_NEAR(loss, ref_loss, 1e-5 * std::abs(ref_loss));
    for (size_t k = 0; k < params.table().size(); ++k) {
      TensorView v = grads[k];
      double scale = 1e-6;
      for (double q : g[k]) scale = std::max(scale, std::abs(q));
      for (int64_t i = 0; i < v.numel(); ++i)
        ASSERT_NEAR(v.data[i], g[k][static_cast<size_t>(i)], 2e-5 * scale + 1e-6) << v.spec->name << "[" << i << "]";
    }
  }
}

TEST_P(ModelNumeric, ReferenceMatchesCentralDifferences) {
  const ModelShape s = small_shape(GetParam());
  const int64_t T = 3, B = 2;
  Arena params(param_table(s));
  init_uniform(params, 11, 0.5);
  std::vector<int32_t> x, y;
  random_tokens(x, T * B, s.vocab, 4);
  random_tokens(y, T * B, s.vocab, 5);
  RefTensors<double> p, h0(state_table(s, B).size(), std::vector<double>(B * s.hidden, 0.1)), g;
  for (size_t k = 0; k < params.table().size(); ++k) p.emplace_back(params[k].data, params[k].data + params[k].numel());
  const DropoutConfig drop = dropout_of(GetParam());
  reference_loss(s, p, x, y, T, B, h0, &g, &drop);
  const double eps = 1e-6;
  for (size_t k = 0; k < p.size(); ++k)
    for (size_t i = 0; i < p[k].size(); ++i) {
      const double keep = p[k][i];
      p[k][i] = keep + eps;
      const double up = reference_loss<double>(s, p, x, y, T, B, h0, nullptr, &drop);
      p[k][i] = keep - eps;
      const double down = reference_loss<double>(s, p, x, y, T, B, h0, nullptr, &drop);
      p[k][i] = keep;
      const double num = (up - down) / (2 * eps);
      // ReLU has kinks; a perturbation crossing one gives a one-sided estimate, so allow more there.
      const double tol = GetParam().act == Activation::Relu ? 1e-4 : 1e-7;
      ASSERT_NEAR(g[k][i], num, tol * (1 + std::abs(num))) << params.table()[k].name << "[" << i << "]";
    }
}

const std::vector<Case> kSmall = {
    Case{Activation::Tanh, 1, 5},
    Case{Activation::Tanh, 2, 4},
    Case{Activation::Sigmoid, 2, 6},
    Case{Activation::Relu, 2, 5},
    Case{Activation::Tanh, 2, 5, 13, 6, 4, 3, 0.4f, false},
    Case{Activation::Sigmoid, 2, 6, 13, 6, 4, 3, 0.3f, true},
    Case{Activation::Tanh, 1, 5, 13, 6, 4, 3, 0, false, Cell::Lstm},
    Case{Activation::Tanh, 2, 4, 13, 6, 4, 3, 0.3f, false, Cell::Lstm},
    Case{Activation::Tanh, 1, 5, 13, 6, 4, 3, 0, false, Cell::Gru},
    Case{Activation::Tanh, 2, 4, 13, 6, 4, 3, 0.3f, true, Cell::Gru},
    Case{Activation::Tanh, 2, 6, 13, 6, 4, 3, 0.3f, false, Cell::Lstm, true},
    // adaptive softmax: two clusters with a head bias, one cluster under dropout, three with D = 1.5
    Case{Activation::Tanh, 2, 5, 13, 6, 4, 3, 0, false, Cell::Lstm, false, {4, 8}, 2.0, true},
    Case{Activation::Tanh, 1, 5, 13, 6, 4, 3, 0.3f, false, Cell::Gru, false, {5}, 2.0, false},
    Case{Activation::Tanh, 2, 4, 13, 6, 4, 3, 0, false, Cell::Elman, false, {3, 6, 9}, 1.5, false},
};
// Large enough that every kernel takes its multi-threaded path.
const std::vector<Case> kLarge = {
    Case{Activation::Tanh, 2, 32, 3000, 64, 6, 8},
    Case{Activation::Tanh, 2, 32, 3000, 64, 6, 8, 0.5f, false},
    Case{Activation::Tanh, 2, 32, 3000, 64, 6, 8, 0.5f, false, Cell::Lstm},
    Case{Activation::Tanh, 2, 32, 3000, 64, 6, 8, 0.5f, false, Cell::Gru},
    // hidden 53: four panels of the packed kernel, the last partial, split unevenly between threads
    Case{Activation::Relu, 2, 20, 300, 53, 5, 7},
    Case{Activation::Tanh, 2, 20, 300, 53, 5, 7, 0, false, Cell::Lstm},
    Case{Activation::Tanh, 2, 20, 300, 53, 5, 7, 0, false, Cell::Gru},
    Case{Activation::Tanh, 2, 32, 3000, 64, 6, 8, 0.5f, false, Cell::Lstm, false, {200, 1000}, 4.0, true},
    // a tail of 39,900 words: the fused path (column blocks, logits recomputed in backward), padded rows
    Case{Activation::Tanh, 1, 16, 40000, 32, 5, 7, 0.3f, false, Cell::Lstm, false, {100}, 2.0, true},
};
std::vector<Case> all_cases() {
  std::vector<Case> v = kSmall;
  v.insert(v.end(), kLarge.begin(), kLarge.end());
  return v;
}
auto case_name = [](const auto& info) {
  return std::string(cell_name(info.param.cell)) + "_" + activation_name(info.param.act) + "_L" +
         std::to_string(info.param.layers) + "_E" + std::to_string(info.param.embed) + "_V" +
         std::to_string(info.param.vocab) +
         (info.param.dropout > 0 ? (info.param.variational ? "_vardrop" : "_drop") : "") +
         (info.param.tied ? "_tied" : "") + (info.param.cutoffs.empty() ? "" : "_adaptive");
};

INSTANTIATE_TEST_SUITE_P(Cells, ModelGrad, ::testing::ValuesIn(all_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(Cells, ModelNumeric, ::testing::ValuesIn(kSmall), case_name);

}  // namespace
}  // namespace manylm

namespace manylm {
namespace {

// The adaptive softmax's probabilities are exact and normalized: the distribution sampling sees (every word's
// log p, through the head and each tail) sums to 1 and gives the target the log p the training forward scores;
// a step whose targets all fall in the head leaves the tails untouched (no rows, no gradient).
class AdaptiveVocab : public ::testing::TestWithParam<int64_t> {};

// V 500: every tail through its whole block of logits; V 40,000: the last tail (39,800 words) fused.
TEST_P(AdaptiveVocab, LogProbsAreNormalizedAndMatchTheForward) {
  const Engine e(test_util::engine_options());
  ModelShape s;
  s.cell = Cell::Lstm, s.vocab = GetParam(), s.embed = 16, s.hidden = 24, s.layers = 2;
  s.output = Output::Adaptive, s.cutoffs = {50, 200}, s.div_value = 2.0, s.head_bias = true;
  Arena params(param_table(s)), st1(state_table(s, 1)), st2(state_table(s, 1));
  init_uniform(params, 5, 0.3);
  Workspace w1(s, 1, 1), w2(s, 1, 1);
  for (int32_t target : {3, 120, static_cast<int32_t>(s.vocab - 1)}) {
    st1.zero(), st2.zero();
    const float* lp = model_step_logits(e, s, params, w1, 7, st1);
    double sum = 0;
    for (int64_t v = 0; v < s.vocab; ++v) sum += std::exp(double(lp[v]));
    EXPECT_NEAR(sum, 1.0, 1e-5);
    const int32_t x = 7;
    float logp = 0;
    const double loss = model_forward(e, s, params, w2, &x, &target, 1, 1, st2, false, &logp);
    EXPECT_NEAR(logp, lp[target], 1e-5) << target;
    EXPECT_NEAR(loss, -logp, 1e-5);
  }
  Arena grads(param_table(s));
  std::vector<int32_t> x(12, 4), y(12);
  for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<int32_t>(i * 3);  // all below the first cutoff
  Workspace w(s, 4, 3);
  Arena state(state_table(s, 3));
  model_forward(e, s, params, w, x.data(), y.data(), 4, 3, state, true, nullptr);
  model_backward(e, s, params, w, x.data(), 4, 3, grads);
  const ParamIndex ix = param_index(s);
  for (int64_t i = 0; i < s.clusters(); ++i) {
    EXPECT_FALSE(w.adaptive.touched(i));
    for (int k : {ix.tail_proj[i], ix.tail_out[i]})
      for (int64_t j = 0; j < grads[k].numel(); ++j) ASSERT_EQ(grads[k].data[j], 0.0f) << grads.table()[k].name;
  }
}

INSTANTIATE_TEST_SUITE_P(Adaptive, AdaptiveVocab, ::testing::Values(500, 40000));

TEST(Adaptive, SettingsAreChecked) {
  ModelShape s;
  s.vocab = 100, s.hidden = 8, s.output = Output::Adaptive;
  for (auto [cutoffs, div, needle] : std::vector<std::tuple<std::vector<int64_t>, double, std::string>>{
           {{}, 4.0, "--cutoffs"},
           {{0, 50}, 4.0, "--cutoffs"},
           {{50, 50}, 4.0, "--cutoffs"},
           {{60, 20}, 4.0, "--cutoffs"},
           {{50, 100}, 4.0, "--cutoffs"},
           {{10, 50}, 0.5, "--div-value"},
           {{10, 50}, 4.0, "--div-value"}}) {  // 8 / 4² = 0.5: a tail of no units
    s.cutoffs = cutoffs, s.div_value = div;
    EXPECT_NE(test_util::user_error([&] { check_adaptive(s); }).find(needle), std::string::npos) << needle;
  }
  s.cutoffs = {10, 50}, s.div_value = 2.0;
  EXPECT_NO_THROW(check_adaptive(s));
  EXPECT_EQ(s.tail_hidden(0), 4);
  EXPECT_EQ(s.tail_hidden(1), 2);
  EXPECT_EQ(s.head_size(), 12);
  EXPECT_EQ(s.tail_size(1), 50);
}

}  // namespace
}  // namespace manylm

namespace manylm {
namespace {

// The fused softmax + cross-entropy against double: loss, log p and gradient, for rows that take the in-cache
// path and for rows longer than L2 holds (the blocked path of a large tail cluster), with a spread of logits.
TEST(Softmax, XentMatchesDoubleOnShortAndLongRows) {
  for (int64_t V : {7, 1000, 70000, 200003}) {
    SCOPED_TRACE(V);
    const int64_t R = 3;
    std::vector<float> z(static_cast<size_t>(R * V));
    CounterRng rng{17, static_cast<uint64_t>(V)};
    for (size_t i = 0; i < z.size(); ++i) z[i] = 12.0f * rng.uniform(i) - 6.0f;
    const std::vector<float> z0 = z;
    const int32_t y[R] = {0, static_cast<int32_t>(V / 2), static_cast<int32_t>(V - 1)};
    float logp[R];
    const double loss = softmax_xent(z.data(), R, V, y, 0.5f, logp);
    double want = 0;
    for (int64_t r = 0; r < R; ++r) {
      const float* zr = z0.data() + r * V;
      double m = zr[0], s = 0;
      for (int64_t j = 0; j < V; ++j) m = std::max(m, double(zr[j]));
      for (int64_t j = 0; j < V; ++j) s += std::exp(double(zr[j]) - m);
      const double lse = m + std::log(s), l = lse - zr[y[r]];
      want += l;
      EXPECT_NEAR(logp[r], -l, 1e-5 * (1 + l));
      for (int64_t j = 0; j < V; j += 1 + V / 97) {
        const double g = 0.5 * (std::exp(double(zr[j]) - lse) - (j == y[r] ? 1.0 : 0.0));
        ASSERT_NEAR(z[static_cast<size_t>(r * V + j)], g, 1e-6 + 1e-5 * std::abs(g)) << r << "," << j;
      }
    }
    EXPECT_NEAR(loss, want, 1e-5 * want);
  }
}

// Random decoder inputs for the fused scorer: top (R, H), W (V, H), bias (V), targets spread over the words.
struct ScoreCase {
  std::vector<float> top, W, b;
  std::vector<int32_t> y;
  ScoreCase(int64_t R, int64_t H, int64_t V) : top(R * H), W(V * H), b(V), y(R) {
    CounterRng rng{23, static_cast<uint64_t>(V * 1000 + R)};
    for (size_t i = 0; i < top.size(); ++i) top[i] = 2.0f * rng.uniform(i) - 1.0f;
    for (size_t i = 0; i < W.size(); ++i) W[i] = 2.0f * rng.uniform(1000000 + i) - 1.0f;
    for (size_t i = 0; i < b.size(); ++i) b[i] = rng.uniform(2000000 + i) - 0.5f;
    for (int64_t r = 0; r < R; ++r) y[static_cast<size_t>(r)] = static_cast<int32_t>((r * 7919) % V);
  }
  // log softmax(W·top_r + b)[y_r] in double; `bf16`: the products' operands rounded to bfloat16 first.
  std::vector<double> want(int64_t R, int64_t H, int64_t V, bool bf16) const {
    auto op = [&](float x) {
      uint16_t h;
      to_bf16(&x, 1, &h);
      return bf16 ? double(from_bf16(h)) : double(x);
    };
    std::vector<double> out(static_cast<size_t>(R)), z(static_cast<size_t>(V));
    for (int64_t r = 0; r < R; ++r) {
      for (int64_t v = 0; v < V; ++v) {
        double d = b[static_cast<size_t>(v)];
        for (int64_t k = 0; k < H; ++k)
          d += op(top[static_cast<size_t>(r * H + k)]) * op(W[static_cast<size_t>(v * H + k)]);
        z[static_cast<size_t>(v)] = d;
      }
      const double m = *std::max_element(z.begin(), z.end());
      double s = 0;
      for (double zv : z) s += std::exp(zv - m);
      out[static_cast<size_t>(r)] = z[static_cast<size_t>(y[static_cast<size_t>(r)])] - m - std::log(s);
    }
    return out;
  }
};

// Runs the fused scorer on a case and compares log p and the loss with the double reference.
void expect_fused_score(const Engine& e, int64_t R, int64_t H, int64_t V, bool bf16) {
  const ScoreCase c(R, H, V);
  std::vector<float> logp(static_cast<size_t>(R));
  const double loss = full_softmax_score(e, c.top.data(), R, H, c.W.data(), c.b.data(), V, c.y.data(), logp.data());
  const std::vector<double> want = c.want(R, H, V, bf16);
  double total = 0;
  for (int64_t r = 0; r < R; ++r) {
    const double lp = want[static_cast<size_t>(r)];
    total -= lp;
    ASSERT_NEAR(logp[static_cast<size_t>(r)], lp, 1e-5 * (1 + std::abs(lp))) << r;
  }
  EXPECT_NEAR(loss, total, 1e-5 * total);
}

// Scoring under the full softmax, product and normalizer fused per vocabulary chunk, against double: row counts
// below, at and above a block (and not a multiple of the padding), vocabularies below, at and across chunks, on 1
// and 2 threads and on both GEMM backends that run here.
TEST(Softmax, FusedScoreMatchesDoubleForAnyRowsWordsAndThreads) {
  const int keep = num_threads();
  for (GemmBackend backend : {GemmBackend::Blas, GemmBackend::OneDnn})
    for (int threads : {1, 2}) {
      const Engine e(test_util::engine_options(threads, backend));
      for (int64_t V : {7, 512, 1500, 70003})
        for (int64_t R : {1, 17, 128, 300}) {
          if (V > 10000 && R > 17) continue;  // the double reference's cost
          SCOPED_TRACE(::testing::Message() << name_of(backend) << " threads " << threads << " V " << V << " R " << R);
          expect_fused_score(e, R, 24, V, false);
        }
    }
  const Engine restore(test_util::engine_options(keep));
}

// With a bf16 engine the normalizer's products and the target's logit both round their operands to bfloat16.
TEST(Softmax, FusedScoreOfABf16EngineRoundsBothProductsAlike) {
  if (!bf16_supported()) GTEST_SKIP() << "no AVX512_BF16 on this CPU";
  const int keep = num_threads();
  const Engine e(test_util::engine_options(2, GemmBackend::OneDnn, Precision::Bf16));
  for (int64_t R : {5, 130}) expect_fused_score(e, R, 24, 1500, true);
  const Engine restore(test_util::engine_options(keep));
}

}  // namespace
}  // namespace manylm
