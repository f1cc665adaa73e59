// vocab.cc — see vocab.h.
#include "data/vocab.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>

#include "core/error.h"
#include "core/io.h"

namespace manylm {

Vocab::Vocab(TokenMode mode, std::vector<std::string> words, std::vector<int64_t> counts)
    : mode_(mode), words_(std::move(words)), counts_(std::move(counts)) {
  for (size_t i = 0; i < words_.size(); ++i) index_.emplace(words_[i], static_cast<int32_t>(i));
  eos_ = find(kEos);
  unk_ = find(kUnk);
}

int32_t Vocab::find(std::string_view w) const {
  auto it = index_.find(std::string(w));
  return it == index_.end() ? -1 : it->second;
}

uint64_t Vocab::hash() const {
  uint64_t h = fnv1a(token_mode_name(mode_));
  for (const auto& w : words_) h = fnv1a(std::string_view(w.data(), w.size() + 1), h);  // include the NUL separator
  return h;
}

std::string Vocab::to_json() const {
  nlohmann::json j;
  j["format"] = "manylm-vocab-1";
  j["tokens"] = token_mode_name(mode_);
  j["words"] = words_;
  j["counts"] = counts_;
  return j.dump() + "\n";
}

Vocab Vocab::from_json(const std::string& text, const std::string& path) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("format") || j["format"] != "manylm-vocab-1")
    fail("{}: not a manylm vocabulary file", path);
  try {
    auto words = j.at("words").get<std::vector<std::string>>();
    std::vector<int64_t> counts;
    for (const auto& c : j.at("counts").get_ref<const nlohmann::json::array_t&>()) {  // integers only: 2.5 is not
      if (!c.is_number_integer() || (c.is_number_unsigned() && c.get<uint64_t>() > uint64_t{INT64_MAX}))
        fail("{}: vocabulary has a count that is not an integer ({})", path, c.dump());
      counts.push_back(c.get<int64_t>());
    }
    if (words.size() != counts.size() || words.empty()) fail("{}: vocabulary words and counts disagree", path);
    const std::string tokens = j.at("tokens").get<std::string>();
    const std::optional<TokenMode> mode = lookup_name<TokenMode>(tokens);
    if (!mode) fail("{}: vocabulary has unknown token mode '{}'", path, tokens);
    for (const int64_t c : counts)
      if (c < 0) fail("{}: vocabulary has a negative count ({})", path, c);
    Vocab v(*mode, std::move(words), std::move(counts));
    if (v.index_.size() != v.words_.size())  // a word listed twice would own two ids and be read as one
      for (size_t i = 0; i < v.words_.size(); ++i)
        if (v.index_.at(v.words_[i]) != static_cast<int32_t>(i))
          fail("{}: vocabulary lists the word '{}' twice (ids {} and {})", path, v.words_[i], v.index_.at(v.words_[i]),
               i);
    if (v.unk() < 0) fail("{}: vocabulary has no <unk>", path);
    if (v.mode() == TokenMode::Word && v.eos() < 0) fail("{}: word vocabulary has no <eos>", path);
    return v;
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed vocabulary: {}", path, e.what());
  }
}

Vocab build_vocab(const std::string& train_path, TokenMode mode, int64_t max_size, int64_t min_count) {
  std::unordered_map<std::string, int64_t> counts;
  int64_t eols = 0;
  read_tokens(
      train_path, mode, [&](std::string_view w) { ++counts[std::string(w)]; }, [&] { ++eols; });
  if (counts.empty() && eols == 0) fail("{}: empty corpus: no tokens", train_path);
  return vocab_from_counts(std::move(counts), eols, mode, max_size, min_count);
}

Vocab vocab_from_counts(std::unordered_map<std::string, int64_t> counts, int64_t eols, TokenMode mode, int64_t max_size,
                        int64_t min_count) {
  if (mode == TokenMode::Word) counts[Vocab::kEos] += eols;
  counts.try_emplace(Vocab::kUnk, 0);
  std::vector<std::pair<std::string, int64_t>> items(counts.begin(), counts.end());
  auto by_count = [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  };
  std::sort(items.begin(), items.end(), by_count);
  auto special = [](const std::string& w) { return w == Vocab::kEos || w == Vocab::kUnk; };
  std::vector<std::pair<std::string, int64_t>> kept;
  int64_t unk_extra = 0;
  const int64_t limit = max_size > 0 ? max_size : INT64_MAX;
  // Specials always stay; other words while they fit and are frequent enough.
  int64_t specials =
      static_cast<int64_t>(std::count_if(items.begin(), items.end(), [&](auto& it) { return special(it.first); }));
  int64_t room = std::max<int64_t>(0, limit - specials);
  for (auto& [w, c] : items) {
    if (special(w) || (c >= min_count && room > 0)) {
      if (!special(w)) --room;
      kept.emplace_back(w, c);
    } else {
      unk_extra += c;
    }
  }
  for (auto& [w, c] : kept)
    if (w == Vocab::kUnk) c += unk_extra;
  std::sort(kept.begin(), kept.end(), by_count);  // <unk>'s count grew: ids stay ordered by count
  std::vector<std::string> words;
  std::vector<int64_t> cnt;
  for (auto& [w, c] : kept) {
    words.push_back(w);
    cnt.push_back(c);
  }
  return Vocab(mode, std::move(words), std::move(cnt));
}

}  // namespace manylm
