// sample_cmd.cc — `manylm sample`: generate text from a trained model (prompt, length, temperature,
// top-k, seed). Every draw is a pure function of (seed, position): same seed, same text.
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "cli/commands.h"
#include "core/engine.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "model/model.h"
#include "model/softmax.h"
#include "train/checkpoint.h"

namespace manylm {

namespace {
struct SampleOptions {
  std::string model, prompt;
  std::string weights = "auto";
  int64_t length = 50, top_k = 0;
  double temperature = 1.0;
  uint64_t seed = 1;
  int threads = 1;
  bool json = false;
};

// CRLF and a CR alone become LF, as the corpus reader reads them.
std::string unix_line_ends(const std::string& p) {
  std::string s;
  for (size_t i = 0; i < p.size(); ++i) {
    s += p[i] == '\r' ? '\n' : p[i];
    if (p[i] == '\r' && i + 1 < p.size() && p[i + 1] == '\n') ++i;
  }
  return s;
}

// Splits the prompt the way the corpus reader does: in word mode words on whitespace and `eos` for each
// line end; in character mode UTF-8 characters (the prompt is valid UTF-8); line ends as unix_line_ends.
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
}  // namespace

Runner add_sample_command(CLI::App& app) {
  auto o = std::make_shared<SampleOptions>();
  auto* sub = app.add_subcommand("sample", "Generate text from a trained model");
  sub->add_option("--model", o->model, "Run directory of a trained model")->required();
  sub->add_option("--weights", o->weights, kWeightsHelp)->capture_default_str();
  sub->add_option("--prompt", o->prompt, "Text to continue (default: start of a sentence)");
  sub->add_option("--length", o->length, "Tokens to generate")->capture_default_str();
  sub->add_option("--temperature", o->temperature, "Softmax temperature (lower: more conservative)")
      ->capture_default_str();
  sub->add_option("--top-k", o->top_k, "Sample only among the k most likely tokens (0: all)")->capture_default_str();
  sub->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  sub->add_option("--threads", o->threads, "Threads")->capture_default_str()->check(CLI::Range(0, 65536));
  sub->add_flag("--json", o->json, "Print one JSON object on stdout");
  return [o] {
    if (o->length <= 0) fail("--length: must be positive (got {})", o->length);
    if (!(o->temperature > 0) || !std::isfinite(o->temperature))
      fail("--temperature: must be a positive number (got {})", o->temperature);
    if (o->top_k < 0) fail("--top-k: must be 0 or positive (got {})", o->top_k);
    LoadedModel m = load_run_model(o->model, o->weights);
    // The run's backend: the same numbers as training.
    EngineOptions eo;
    eo.threads = o->threads;
    eo.backend = m.config.gemm;
    eo.precision = m.config.precision;
    const Engine engine(eo);
    const ModelShape& s = m.shape;
    Workspace ws(s, 1, 1);
    Arena state(state_table(s, 1));
    const bool words = m.vocab.mode() == TokenMode::Word;
    int32_t cur = m.vocab.start();
    std::string text;
    if (!valid_utf8(o->prompt)) fail("--prompt: not valid UTF-8");
    for (const auto& w : prompt_tokens(o->prompt, m.vocab.mode(), words ? m.vocab.word(m.vocab.eos()) : "")) {
      model_step_logits(engine, s, m.params, ws, cur, state);
      cur = m.vocab.id(w);
      if (words)
        text += cur == m.vocab.eos() ? "\n" : (text.empty() || text.back() == '\n' ? "" : " ") + w;
      else
        text += w;
    }
    CounterRng rng{o->seed, 0x5A3F};
    std::vector<float> p(static_cast<size_t>(s.vocab));
    std::vector<int32_t> order(static_cast<size_t>(s.vocab));
    for (int64_t i = 0; i < o->length; ++i) {
      const float* z = model_step_logits(engine, s, m.params, ws, cur, state);
      std::copy(z, z + s.vocab, p.begin());
      softmax_inplace(p.data(), s.vocab, static_cast<float>(o->temperature));
      if (o->top_k > 0 && o->top_k < s.vocab) {
        std::iota(order.begin(), order.end(), 0);
        std::nth_element(order.begin(), order.begin() + o->top_k, order.end(),
                         [&](int32_t a, int32_t b) { return p[a] > p[b]; });
        float keep = 0;
        for (int64_t k = 0; k < o->top_k; ++k) keep += p[order[k]];
        for (int64_t k = o->top_k; k < s.vocab; ++k) p[order[k]] = 0;
        for (auto& v : p) v /= keep;
      }
      float u = rng.uniform(static_cast<uint64_t>(i)), acc = 0;
      int32_t next = static_cast<int32_t>(s.vocab - 1);
      for (int64_t v = 0; v < s.vocab; ++v) {
        acc += p[v];
        if (u < acc) {
          next = static_cast<int32_t>(v);
          break;
        }
      }
      const std::string& w = m.vocab.word(next);
      if (words)
        text += next == m.vocab.eos() ? "\n" : (text.empty() || text.back() == '\n' ? "" : " ") + w;
      else
        text += w;
      cur = next;
    }
    if (o->json)
      fmt::print("{}\n", nlohmann::json{{"command", "sample"}, {"text", text}, {"tokens", o->length}}.dump(
                             -1, ' ', false, nlohmann::json::error_handler_t::replace));
    else
      fmt::print("{}\n", text);
    return 0;
  };
}

}  // namespace manylm
