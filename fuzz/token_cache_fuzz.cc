// token_cache_fuzz.cc — libFuzzer target: any bytes as an entry of the token cache (data/corpus.h), the binary
// file of ids a later run memory-maps instead of reading the text. The entry's key (bytes 8-15) is set to the one
// of the harness's text and vocabulary, so the reader gets past the lookup; the magic, counts and ids are the
// input's. A damaged entry must never give ids outside the vocabulary: it is used only when whole, else the text
// is read again (and the entry rewritten), so the ids are always the text's.
#include <cstring>

#include "data/corpus.h"
#include "data/vocab.h"
#include "fuzz/fuzz_util.h"

using namespace manylm;

namespace {
// The text and vocabulary (40 words of the seeds' PTB slice, cut to --vocab-size 40 as fuzz/make_seeds.sh's run).
struct Text {
  std::string dir = fuzz::scratch_dir(), path = dir + "/text.txt", cache = dir + "/cache", entry, key;
  Vocab vocab;
  std::vector<int32_t> ids;
  Text() {
    fuzz::put_file(path, "the company said it would n't <unk> its N shares\nthe market\n\nsaid the <unk> of it\n");
    vocab = build_vocab(path, TokenMode::Word, 40, 1);
    const TokenIds t = TokenIds::load(path, vocab, cache);
    ids.assign(t.ids().begin(), t.ids().end());
    for (const auto& f : std::filesystem::directory_iterator(cache)) entry = f.path().string();
    std::FILE* f = std::fopen(entry.c_str(), "rb");
    key.resize(8);
    if (!f || std::fseek(f, 8, SEEK_SET) != 0 || std::fread(key.data(), 1, 8, f) != 8) std::abort();
    std::fclose(f);
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Text text;
  std::string e(fuzz::bytes(data, size));
  if (e.size() >= 16) e.replace(8, 8, text.key);
  fuzz::put_file(text.entry, e);
  const TokenIds t = TokenIds::load(text.path, text.vocab, text.cache);
  for (const int32_t id : t.ids()) fuzz::check(id >= 0 && id < text.vocab.size(), "cached ids are in the vocabulary");
  if (!t.from_cache())
    fuzz::check(std::equal(t.ids().begin(), t.ids().end(), text.ids.begin(), text.ids.end()),
                "a rebuilt entry gives the text's ids");
  return 0;
}
