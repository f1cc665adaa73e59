// corpus_fuzz.cc — libFuzzer target: any bytes as a corpus file, read as train reads one (data/text_reader.h,
// data/vocab.h build_vocab, data/corpus.h TokenIds::load) in word and in character mode. A file it accepts gives
// the same tokens to every reader: a vocabulary built from it holds every token, its ids decode to the tokens read
// (and <eos> at each line end in word mode, nothing out of vocabulary), and every token is valid UTF-8.
#include "data/corpus.h"
#include "data/vocab.h"
#include "fuzz/fuzz_util.h"

using namespace manylm;

namespace {
void read_as(const std::string& path, TokenMode mode) {
  std::vector<std::string> tokens;  // "" stands for a line end
  if (!fuzz::accepts([&] {
        read_tokens(
            path, mode, [&](std::string_view w) { tokens.emplace_back(w); }, [&] { tokens.emplace_back(); });
      }))
    return;
  for (const std::string& t : tokens) fuzz::check(valid_utf8(t), "tokens are UTF-8");
  if (tokens.empty()) return;  // build_vocab refuses an empty corpus
  const Vocab v = build_vocab(path, mode, 0, 1);
  const TokenIds ids = TokenIds::load(path, v, "");
  fuzz::check(ids.size() == static_cast<int64_t>(tokens.size()) && ids.oov() == 0, "every token has an id");
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int32_t id = ids.ids()[i];
    fuzz::check(id >= 0 && id < v.size(), "ids are in the vocabulary");
    fuzz::check(tokens[i].empty() ? id == v.eos() : v.word(id) == tokens[i], "ids decode to the tokens read");
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::scratch_dir() + "/corpus.txt";
  fuzz::put_file(path, fuzz::bytes(data, size));
  read_as(path, TokenMode::Word);
  read_as(path, TokenMode::Char);
  return 0;
}
