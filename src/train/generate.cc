// generate.cc — see generate.h.
#include "train/generate.h"

#include <algorithm>
#include <numeric>
#include <sstream>

#include "core/rng.h"
#include "model/model.h"
#include "model/softmax.h"

namespace manylm {

namespace {
// CRLF and a CR alone become LF, as the corpus reader reads them.
std::string unix_line_ends(const std::string& p) {
  std::string s;
  for (size_t i = 0; i < p.size(); ++i) {
    s += p[i] == '\r' ? '\n' : p[i];
    if (p[i] == '\r' && i + 1 < p.size() && p[i + 1] == '\n') ++i;
  }
  return s;
}

// Draws from the distribution of logits z (V) at temperature tau among the k most likely (k = 0: all); u uniform.
int32_t draw(const float* z, int64_t V, double tau, int64_t k, float u, std::vector<float>& p,
             std::vector<int32_t>& order) {
  std::copy(z, z + V, p.begin());
  softmax_inplace(p.data(), V, static_cast<float>(tau));
  if (k > 0 && k < V) {
    std::iota(order.begin(), order.end(), 0);
    std::nth_element(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
    float keep = 0;
    for (int64_t j = 0; j < k; ++j) keep += p[order[j]];
    for (int64_t j = k; j < V; ++j) p[order[j]] = 0;
    for (auto& v : p) v /= keep;
  }
  float acc = 0;
  for (int64_t v = 0; v < V; ++v) {
    acc += p[v];
    if (u < acc) return static_cast<int32_t>(v);
  }
  return static_cast<int32_t>(V - 1);
}
}  // namespace

std::vector<std::string> prompt_tokens(const std::string& given, TokenMode mode, const std::string& eos) {
  const std::string p = unix_line_ends(given);
  std::vector<std::string> out;
  if (mode == TokenMode::Word) {
    std::istringstream lines(p);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream in(line);
      for (std::string w; in >> w;) out.push_back(w);
      if (!lines.eof()) out.push_back(eos);  // the line ended with '\n'
    }
  } else {
    for (size_t i = 0; i < p.size();) {
      unsigned char c = static_cast<unsigned char>(p[i]);
      size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      out.push_back(p.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string generate(const Engine& e, const LoadedModel& m, const GenerateOptions& o) {
  const ModelShape& s = m.shape;
  Workspace ws(s, 1, 1);
  Arena state(state_table(s, 1));
  const bool words = m.vocab.mode() == TokenMode::Word;
  auto append = [&](std::string& text, int32_t id, const std::string& w) {
    if (words)
      text += id == m.vocab.eos() ? "\n" : (text.empty() || text.back() == '\n' ? "" : " ") + w;
    else
      text += w;
  };
  int32_t cur = m.vocab.start();
  std::string text;
  for (const auto& w : prompt_tokens(o.prompt, m.vocab.mode(), words ? m.vocab.word(m.vocab.eos()) : "")) {
    model_step_logits(e, s, m.params, ws, cur, state);
    cur = m.vocab.id(w);
    append(text, cur, w);
  }
  CounterRng rng{o.seed, 0x5A3F};
  std::vector<float> p(static_cast<size_t>(s.vocab));
  std::vector<int32_t> order(static_cast<size_t>(s.vocab));
  for (int64_t i = 0; i < o.length; ++i) {
    const float* z = model_step_logits(e, s, m.params, ws, cur, state);
    cur = draw(z, s.vocab, o.temperature, o.top_k, rng.uniform(static_cast<uint64_t>(i)), p, order);
    append(text, cur, m.vocab.word(cur));
  }
  return text;
}

}  // namespace manylm
