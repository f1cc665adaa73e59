// reader_test.cc — regressions for what fuzzing the file readers found (fuzz/: libFuzzer targets under ASan and
// UBSan), or found while writing their targets. Each case is the smallest input of its finding, and fails on the
// code before its fix.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "data/nbest.h"
#include "data/shard_cache.h"
#include "data/vocab.h"
#include "test_util.h"
#include "train/resume.h"

namespace manylm {
namespace {

using test_util::make_temp_dir;
using test_util::user_error;
using test_util::write_bytes;

// A safetensors file of the given JSON header and `data` bytes.
std::string safetensors_bytes(const nlohmann::json& header, size_t data) {
  const std::string h = header.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
  return out + h + std::string(data, '\0');
}

// A shape whose element count overflows 64 bits wrapped around to the size of its data: [2^62 + 1] floats "are"
// 4 bytes (exit 1, std::length_error, before), and [2^40, 2^40] was signed overflow (UBSan).
TEST(Readers, SafetensorsShapeThatOverflowsIsOneLine) {
  const std::string dir = make_temp_dir("reader"), path = dir + "/w.safetensors";
  const std::vector<std::pair<std::vector<uint64_t>, size_t>> cases = {
      {{(uint64_t{1} << 62) + 1}, 4}, {{uint64_t{1} << 40, uint64_t{1} << 40}, 0}, {{3, uint64_t{1} << 62, 4}, 0}};
  for (const auto& [shape, bytes] : cases) {
    nlohmann::json h = {{"a", {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {0, bytes}}}}};
    write_bytes(path, safetensors_bytes(h, bytes));
    const std::string e = user_error([&] { load_safetensors(path); });
    EXPECT_NE(e.find(path + ": "), std::string::npos) << h.dump();
    EXPECT_NE(e.find("tensor a "), std::string::npos) << e;
  }
  std::filesystem::remove_all(dir);
}

// A shape that is not an array was read as one dimension (a number) or as the object's values; an empty tensor
// (a zero dimension, even beside a huge one) is a valid one of no bytes.
TEST(Readers, SafetensorsShapeMustBeAnArrayAndMayBeEmpty) {
  const std::string dir = make_temp_dir("reader"), path = dir + "/w.safetensors";
  for (const nlohmann::json& shape : {nlohmann::json(1), nlohmann::json({{"x", 1}})}) {
    write_bytes(path, safetensors_bytes({{"a", {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {0, 4}}}}}, 4));
    EXPECT_NE(user_error([&] { load_safetensors(path); }).find("tensor a has a bad shape"), std::string::npos)
        << shape.dump();
  }
  const nlohmann::json h = {{"e", {{"dtype", "F32"}, {"shape", {uint64_t{1} << 62, 0}}, {"data_offsets", {0, 0}}}},
                            {"f", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {0, 4}}}}};
  write_bytes(path, safetensors_bytes(h, 4));
  const SafeTensorsFile f = load_safetensors(path);
  EXPECT_TRUE(f.tensors.at("e").values.empty());
  EXPECT_EQ(f.tensors.at("f").values.size(), 1u);
  std::filesystem::remove_all(dir);
}

// vocab.json counts were read with nlohmann's get<int64_t>, which casts a double: 3.7e70 was undefined behaviour
// (UBSan) and 2.5 silently became 2. A count must be an integer.
TEST(Readers, VocabularyCountsMustBeIntegers) {
  for (const std::string counts : {"[3.7e70, 1, 1]", "[2.5, 1, 1]", "[18446744073709551615, 1, 1]", "7"}) {
    const std::string text =
        R"({"format": "manylm-vocab-1", "tokens": "word", "words": ["a", "<eos>", "<unk>"], "counts": )" + counts + "}";
    EXPECT_NE(user_error([&] { Vocab::from_json(text, "v.json"); }).find("v.json: "), std::string::npos) << counts;
  }
  const Vocab v = Vocab::from_json(
      R"({"format": "manylm-vocab-1", "tokens": "word", "words": ["a", "<eos>", "<unk>"], "counts": [3, 2, 0]})", "v");
  EXPECT_EQ(v.count(0), 3);
}

// corpus.json (train --resume) was read with nlohmann's operator[] and get<>: a file list that is not a list, or an
// entry that is not an object of integer bytes and string hash, left as "internal error" (exit 1). Now one line
// naming the file; a well-formed record still says which part changed and why.
TEST(Readers, CorpusRecordThatIsNotOneIsOneLine) {
  const std::string now =
      R"({"train": {"files": [{"bytes": 3, "hash": "00ab", "name": "t.txt", "tokens": 1}]}, "valid": {"files": []}, )"
      R"("test": {"files": []}})";
  for (const std::string bad : {R"({"train": {"files": 7}})", R"({"train": {"files": [5]}})",
                                R"({"train": {"files": [{"bytes": "3", "hash": "00ab"}]}})",
                                R"({"train": {"files": [{"bytes": 3, "hash": 171}]}})", "[1]", "{"}) {
    const std::string e = user_error([&] { corpus_change(bad, now, "run/corpus.json"); });
    EXPECT_NE(e.find("run/corpus.json: not a corpus record"), std::string::npos) << bad << ": " << e;
  }
  EXPECT_EQ(corpus_change(now, now, "c").first, "");
  const auto [part, why] =
      corpus_change(R"({"train": {"files": [{"bytes": 4, "hash": "00ab", "name": "u"}]}})", now, "c");
  EXPECT_EQ(part, "train");
  EXPECT_EQ(why, "t.txt is 3 bytes with hash 00ab, was u (4 bytes, hash 00ab)");
}

// A shard's record was trusted when its first 56 bytes were a record, whatever followed (fuzz_shard_cache), and
// its time of reading less 2 s was computed in signed arithmetic that overflows for a damaged record's time near
// the smallest int64 (undefined behaviour; in practice the record was then trusted).
TEST(Readers, ShardRecordIsTrustedOnlyWhole) {
  const std::string dir = make_temp_dir("reader"), path = dir + "/t.txt", cache = dir + "/cache";
  write_bytes(path, "a b\n");
  const FileStamp s = stamp_of(path);
  record_hash(cache, path, s, s.mtime_ns + 3'000'000'000, 42);
  EXPECT_EQ(recorded_hash(cache, path, s), std::optional<uint64_t>(42));
  std::string record;
  for (const auto& f : std::filesystem::directory_iterator(cache)) record = f.path().string();
  write_bytes(record, test_util::read_bytes(record) + "x");
  EXPECT_EQ(recorded_hash(cache, path, s), std::nullopt);
  record_hash(cache, path, s, std::numeric_limits<int64_t>::min() + 1, 42);
  EXPECT_EQ(recorded_hash(cache, path, s), std::nullopt);
  std::filesystem::remove_all(dir);
}

// std::regex recurses per character: rescore --key-regex '^(.*)-[0-9]+$' on a 50 KB key was a segmentation fault
// (ASan: stack overflow at 100 KB; found with fuzz_nbest's harness). A key matched by an expression is at most
// 1024 bytes; the default rule (up to the last '-') takes any.
TEST(Readers, LongKeyUnderAnExpressionIsOneLine) {
  const std::string key = std::string(100'000, 'a') + "-1";
  const UtteranceKeys re({"^(.*)-[0-9]+$", "^(.)", "", "nb.txt"});
  const std::string e = user_error([&] { re.utterance(key, 3); });
  EXPECT_NE(e.find("--key-regex: the key on line 3 of nb.txt is 100002 bytes long"), std::string::npos) << e;
  EXPECT_NE(user_error([&] { re.conversation(key, "u", 3); }).find("--conversation-regex"), std::string::npos);
  EXPECT_EQ(re.utterance(std::string(1022, 'b') + "-7", 1), std::string(1022, 'b'));
  EXPECT_EQ(UtteranceKeys({"", "", "", "nb.txt"}).utterance(key, 1), std::string(100'000, 'a'));
}

// libstdc++ (GCC 12) read a back-reference's or a repeat count's digits into a long unchecked: --key-regex
// '\9999999999999999999' was signed overflow (UBSan; fuzz_nbest after 76,460 executions). Six digits at most; other
// digits (literal, escaped backslash) are as they were.
TEST(Readers, HugeNumbersInAnExpressionAreOneLine) {
  for (const std::string re : {"\\9999999999999999999", "a{1,99999999999999999999}", "a{12345678}"}) {
    const std::string e = user_error([&] { UtteranceKeys({re, "", "", "nb"}); });
    EXPECT_NE(e.find("--key-regex '" + re + "': a number of "), std::string::npos) << e;
  }
  EXPECT_NE(user_error([&] {
              UtteranceKeys({"", "(x)\\12345678", "", "nb"});
            }).find("--conversation-regex"),
            std::string::npos);
  EXPECT_EQ(UtteranceKeys({"^(u[0-9]+)-x1234567890", "", "", "nb"}).utterance("u12-x1234567890", 1), "u12");
  EXPECT_EQ(UtteranceKeys({"^\\\\12345678$", "", "", "nb"}).utterance("\\12345678", 1), "\\12345678");
  EXPECT_EQ(UtteranceKeys({"^(a{2,3})b,1234567", "", "", "nb"}).utterance("aab,1234567", 1), "aa");
}

}  // namespace
}  // namespace manylm
