// generate.h — text from a trained model: a prompt fed token by token, then tokens drawn one at a time from the
// softmax at a temperature, optionally among the k most likely only. Every draw is a pure function of (seed,
// position): same seed, same text. Shared by `manylm sample` and the Python module. Not beam search.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/engine.h"
#include "train/checkpoint.h"

namespace manylm {

struct GenerateOptions {
  std::string prompt;  // valid UTF-8 (callers check); "" starts from the start of a sentence
  int64_t length = 50;
  double temperature = 1.0;  // > 0
  int64_t top_k = 0;         // 0: all
  uint64_t seed = 1;
};

// The prompt's text followed by the drawn tokens (words joined by spaces, <eos> as a line end).
std::string generate(const Engine& e, const LoadedModel& m, const GenerateOptions& o);

// Splits text as the corpus reader does: in word mode words on whitespace and `eos` for each line end (a last line
// without one gets none); in character mode UTF-8 characters; CRLF and a CR alone read as LF.
std::vector<std::string> prompt_tokens(const std::string& text, TokenMode mode, const std::string& eos);

}  // namespace manylm
