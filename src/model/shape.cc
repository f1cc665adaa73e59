// shape.cc — see shape.h.
#include "model/shape.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "core/error.h"
#include "core/parallel.h"

namespace manylm {

Cell parse_cell(const std::string& s) { return parse_name<Cell>(s, "--cell"); }
const char* cell_name(Cell c) { return name_of(c); }

std::vector<TensorSpec> param_table(const ModelShape& s) {
  std::vector<TensorSpec> t;
  const int64_t G = s.gates() * s.hidden;
  t.push_back({"encoder.weight", {s.vocab, s.embed}});
  for (int64_t l = 0; l < s.layers; ++l) {
    t.push_back({fmt::format("rnn.weight_ih_l{}", l), {G, s.layer_input(l)}});
    t.push_back({fmt::format("rnn.weight_hh_l{}", l), {G, s.hidden}});
    t.push_back({fmt::format("rnn.bias_ih_l{}", l), {G}});
    t.push_back({fmt::format("rnn.bias_hh_l{}", l), {G}});
  }
  if (s.adaptive()) {
    t.push_back({"decoder.head.weight", {s.head_size(), s.hidden}});
    if (s.head_bias) t.push_back({"decoder.head.bias", {s.head_size()}});
    for (int64_t i = 0; i < s.clusters(); ++i) {
      t.push_back({fmt::format("decoder.tail.{}.0.weight", i), {s.tail_hidden(i), s.hidden}});
      t.push_back({fmt::format("decoder.tail.{}.1.weight", i), {s.tail_size(i), s.tail_hidden(i)}});
    }
    return t;
  }
  if (!s.tied) t.push_back({"decoder.weight", {s.vocab, s.hidden}});
  t.push_back({"decoder.bias", {s.vocab}});
  return t;
}

int64_t ModelShape::tail_hidden(int64_t i) const {
  return static_cast<int64_t>(
      std::floor(static_cast<double>(hidden) / std::pow(div_value, static_cast<double>(i + 1))));
}

void check_adaptive(const ModelShape& s) {
  if (!s.adaptive()) return;
  if (s.cutoffs.empty()) fail("--cutoffs: --output adaptive needs at least one cutoff, e.g. --cutoffs 2000,10000");
  for (size_t i = 0; i < s.cutoffs.size(); ++i) {
    const int64_t c = s.cutoffs[i];
    if (c <= 0 || c >= s.vocab || (i > 0 && c <= s.cutoffs[i - 1]))
      fail("--cutoffs: must increase strictly, each between 1 and the vocabulary size {} minus 1 (got {})", s.vocab,
           fmt::join(s.cutoffs, ","));
  }
  if (!std::isfinite(s.div_value) || s.div_value < 1) fail("--div-value: must be a number >= 1 (got {})", s.div_value);
  for (int64_t i = 0; i < s.clusters(); ++i)
    if (s.tail_hidden(i) < 1)
      fail(
          "--div-value: tail cluster {} would project {} hidden units to {} (H / D^{}); lower --div-value or use "
          "fewer --cutoffs",
          i, s.hidden, s.tail_hidden(i), i + 1);
}

ParamIndex param_index(const ModelShape& s) {
  ParamIndex p;
  int k = 1;
  for (int64_t l = 0; l < s.layers; ++l) {
    p.w_ih.push_back(k++);
    p.w_hh.push_back(k++);
    p.b_ih.push_back(k++);
    p.b_hh.push_back(k++);
  }
  p.first_decoder = k;
  if (s.adaptive()) {
    p.decoder_w = p.decoder_b = -1;
    p.head_w = k++;
    if (s.head_bias) p.head_b = k++;
    for (int64_t i = 0; i < s.clusters(); ++i) {
      p.tail_proj.push_back(k++);
      p.tail_out.push_back(k++);
    }
    return p;
  }
  p.decoder_w = s.tied ? p.encoder : k++;
  p.decoder_b = k++;
  return p;
}

std::vector<TensorSpec> grad_table(const ModelShape& s, bool sparse_embedding) {
  std::vector<TensorSpec> t = param_table(s);
  if (sparse_embedding) t[0].shape = {0, s.embed};
  return t;
}

int64_t param_count(const ModelShape& s) {
  int64_t n = 0;
  for (auto& t : param_table(s)) n += t.numel();
  return n;
}

std::vector<TensorSpec> state_table(const ModelShape& s, int64_t B) {
  std::vector<TensorSpec> t;
  for (int64_t l = 0; l < s.layers; ++l) t.push_back({fmt::format("state.h_l{}", l), {B, s.hidden}});
  if (s.cell == Cell::Lstm)
    for (int64_t l = 0; l < s.layers; ++l) t.push_back({fmt::format("state.c_l{}", l), {B, s.hidden}});
  return t;
}

}  // namespace manylm

#include "core/rng.h"

namespace manylm {
void init_uniform(Arena& params, uint64_t seed, double r) {
  for (size_t k = 0; k < params.table().size(); ++k) {
    TensorView v = params[k];
    CounterRng rng{seed, 0x1000 + k};
    const float lo = static_cast<float>(-r), w = static_cast<float>(2 * r);
    parallel_for(v.numel(), 0, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) v.data[i] = lo + w * rng.uniform(static_cast<uint64_t>(i));
    });
  }
}
}  // namespace manylm
