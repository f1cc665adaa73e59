// shard_cache_fuzz.cc — libFuzzer target: the token cache's files that a later start reads before the text
// (data/shard_cache.h recorded_hash, data/corpus.h count_vocabulary): a shard's record and the counted
// vocabulary's cache entry, joined by kSep. The record's stamp (bytes 8-39) is set to the harness text's, so
// the reader gets past the lookup; its magic, the time it was read and the hash are the input's. A record is
// trusted only whole, of the file as it is now and read at least 2 s after the file last changed, and then
// gives the hash it holds; whatever the entries hold, counting gives a vocabulary with <unk> and <eos> (from a
// well-formed entry, or counted again from the text).
#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>

#include "data/corpus.h"
#include "data/shard_cache.h"
#include "fuzz/fuzz_util.h"

using namespace manylm;

namespace {
constexpr std::string_view kSep = "\n--manylm-fuzz-next-file--\n";

// The text (fuzz/make_seeds.sh writes the seeds' record of the same bytes), last changed in 2001 (so a record of
// it read since is trusted), counted once: its record and vocabulary entry.
struct Text {
  std::string dir = fuzz::scratch_dir(), path = dir + "/shard.txt", cache = dir + "/cache", record, entry;
  FileStamp stamp;
  Text() {
    fuzz::put_file(path, "the company said it would n't <unk> its N shares\nthe market\n\nsaid the <unk> of it\n");
    const timespec y2001[2] = {{978307200, 0}, {978307200, 0}};
    if (::utimensat(AT_FDCWD, path.c_str(), y2001, 0) != 0) std::abort();
    stamp = stamp_of(path);
    count_vocabulary({path}, TokenMode::Word, 0, 1, cache);
    for (const auto& f : std::filesystem::directory_iterator(cache))
      (f.path().extension() == ".shard" ? record : entry) = f.path().string();
    if (record.empty() || entry.empty()) std::abort();
  }
  // Only the two entries stay: a record's other hash names another vocabulary entry, counted and written anew.
  void tidy() const {
    for (const auto& f : std::filesystem::directory_iterator(cache))
      if (f.path() != record && f.path() != entry) std::filesystem::remove(f.path());
  }
};

int64_t int_at(const std::string& b, size_t at) {
  int64_t v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Text text;
  const auto parts = fuzz::split(fuzz::bytes(data, size), kSep, 2);
  std::string r(parts[0]);
  if (r.size() >= 40) r.replace(8, 32, reinterpret_cast<const char*>(&text.stamp), 32);
  fuzz::put_file(text.record, r);
  fuzz::put_file(text.entry, parts[1]);
  const std::optional<uint64_t> h = recorded_hash(text.cache, text.path, text.stamp);
  const bool whole = r.size() == 56 && r.starts_with("MLMSHRD1");
  const bool settled = whole && int_at(r, 40) >= text.stamp.mtime_ns && int_at(r, 40) - text.stamp.mtime_ns >= 2e9;
  fuzz::check(h.has_value() == settled, "a record is trusted when whole, of the file as it is, and settled");
  if (h) fuzz::check(static_cast<int64_t>(*h) == int_at(r, 48), "and gives the hash it holds");
  const Vocab v = count_vocabulary({text.path}, TokenMode::Word, 0, 1, text.cache);
  fuzz::check(v.size() > 0 && v.unk() >= 0 && v.eos() >= 0, "counting gives a vocabulary");
  text.tidy();
  return 0;
}
