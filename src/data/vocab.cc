// vocab.cc — see vocab.h.
#include "data/vocab.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>

#include "core/error.h"
#include "core/io.h"

namespace manylm {

Vocab::Vocab(TokenMode mode, std::vector<std::string> words, std::vector<int64_t> counts, std::string unk_word,
             std::string eos_word)
    : mode_(mode),
      words_(std::move(words)),
      counts_(std::move(counts)),
      unk_word_(std::move(unk_word)),
      eos_word_(std::move(eos_word)) {
  index_.reserve(words_.size());
  for (const std::string& w : words_) index_.insert(w);
  eos_ = find(eos_word_);
  unk_ = find(unk_word_);
}

int32_t Vocab::find(std::string_view w) const { return index_.find(w); }

uint64_t Vocab::hash() const {
  uint64_t h = fnv1a(token_mode_name(mode_));
  for (const auto& w : words_) h = fnv1a(std::string_view(w.data(), w.size() + 1), h);  // include the NUL separator
  if (unk_word_ != kUnk || eos_word_ != kEos)  // (the default names leave the hash as it always was)
    h = fnv1a(eos_word_, fnv1a(std::string_view(unk_word_.data(), unk_word_.size() + 1), h));
  return h;
}

std::string Vocab::to_json() const {
  nlohmann::json j;
  j["format"] = "manylm-vocab-1";
  j["tokens"] = token_mode_name(mode_);
  j["words"] = words_;
  j["counts"] = counts_;
  j["unk"] = unk_word_;
  j["eos"] = eos_word_;
  if (!source_file_.empty()) j["source"] = {{"file", source_file_}, {"format", source_format_}};
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
    Vocab v(*mode, std::move(words), std::move(counts), j.value("unk", std::string(kUnk)),
            j.value("eos", std::string(kEos)));
    if (j.contains("source"))
      v.set_source(j["source"].value("file", std::string()), j["source"].value("format", std::string()));
    if (v.index_.size() != v.words_.size())  // a word listed twice would own two ids and be read as one
      for (size_t i = 0; i < v.words_.size(); ++i)
        if (v.index_.find(v.words_[i]) != static_cast<int32_t>(i))
          fail("{}: vocabulary lists the word '{}' twice (ids {} and {})", path, v.words_[i],
               v.index_.find(v.words_[i]), i);
    if (v.unk() < 0) fail("{}: vocabulary has no {}", path, v.unk_word());
    if (v.mode() == TokenMode::Word && v.eos() < 0) fail("{}: word vocabulary has no {}", path, v.eos_word());
    return v;
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed vocabulary: {}", path, e.what());
  }
}

Vocab build_vocab(const std::string& train_path, TokenMode mode, int64_t max_size, int64_t min_count) {
  WordMap<int64_t> counts;
  int64_t eols = 0;
  read_tokens(
      train_path, mode, [&](std::string_view w) { ++counts[std::string(w)]; }, [&] { ++eols; });
  if (counts.empty() && eols == 0) fail("{}: empty corpus: no tokens", train_path);
  return vocab_from_counts(std::move(counts), eols, mode, max_size, min_count);
}

Vocab vocab_from_counts(WordMap<int64_t> counts, int64_t eols, TokenMode mode, int64_t max_size, int64_t min_count) {
  if (mode == TokenMode::Word) counts[Vocab::kEos] += eols;
  counts.try_emplace(Vocab::kUnk, 0);
  return vocab_from_items({counts.begin(), counts.end()}, mode, max_size, min_count);
}

Vocab vocab_from_items(std::vector<std::pair<std::string, int64_t>> items, TokenMode mode, int64_t max_size,
                       int64_t min_count) {
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
