// checksum_test.cc — checkpoints that are checked, not trusted (issue 21): CRC-32C against the standard's test
// vectors and the SSE4.2 path against the table; safetensors headers that are malformed (shapes that overflow,
// overlapping, gapped or out-of-file data_offsets, dtypes) fail with one UserError naming the file; a flipped byte
// in a tensor or in the metadata fails its checksum; a file without checksums (an older manylm's) loads; the
// training state is range-checked against the run's config and text; a weights file of another model or
// vocabulary is refused.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/crc32c.h"
#include "core/error.h"
#include "core/io.h"
#include "core/safetensors.h"
#include "test_util.h"
#include "train/checkpoint.h"

namespace manylm {
namespace {

using nlohmann::json;
using test_util::user_error;

TEST(Crc32c, StandardVectors) {
  EXPECT_EQ(crc32c(std::string_view("123456789")), 0xE3069283u);
  EXPECT_EQ(crc32c(std::string_view("")), 0u);
  std::string zeros(32, '\0'), ones(32, '\xff'), up(32, '\0');
  for (int i = 0; i < 32; ++i) up[i] = static_cast<char>(i);
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);  // RFC 3720, B.4
  EXPECT_EQ(crc32c(ones), 0x62A8AB43u);
  EXPECT_EQ(crc32c(up), 0x46DD794Eu);
  EXPECT_EQ(crc32c_hex(0xE3069283u), "e3069283");
}

TEST(Crc32c, HardwareMatchesTheTableAtEveryLengthAndAlignment) {
  std::string buf(300, '\0');
  uint32_t x = 7;
  for (char& c : buf) c = static_cast<char>((x = x * 1664525u + 1013904223u) >> 24);
  uint32_t hw = 0;
  if (!crc32c_sse42(buf.data(), 1, 0, &hw)) GTEST_SKIP() << "no SSE4.2";
  for (size_t off = 0; off < 9; ++off)
    for (size_t n = 0; n + off <= buf.size(); n += 7) {
      ASSERT_TRUE(crc32c_sse42(buf.data() + off, n, 0, &hw));
      ASSERT_EQ(hw, crc32c_portable(buf.data() + off, n)) << off << " " << n;
    }
  // Chained: the CRC of a then b is the CRC of ab.
  EXPECT_EQ(crc32c(std::string_view(buf).substr(100), crc32c(std::string_view(buf).substr(0, 100))), crc32c(buf));
}

// A safetensors file from a header (as JSON text) and a data section.
std::string file_of(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

class SafeTensorsFiles : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test_util::make_temp_dir("checksum-test"); }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  // The UserError of loading `bytes`; it names the file.
  std::string error_of(const std::string& bytes) {
    const std::string path = dir_ + "/f.safetensors";
    test_util::write_bytes(path, bytes);
    const std::string e = user_error([&] { load_safetensors(path); });
    EXPECT_NE(e.find(path), std::string::npos) << e;
    return e;
  }
  std::string dir_;
};

TEST_F(SafeTensorsFiles, MalformedHeadersAreOneLineErrors) {
  const std::string data(16, '\0');
  auto header = [](const std::string& tensors) { return "{" + tensors + "}"; };
  const std::string ok = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  struct Case {
    std::string tensors, needle;
  };
  for (const Case& c : std::vector<Case>{
           {R"("a":{"dtype":"F32","shape":[4611686018427387905],"data_offsets":[0,4]})", "larger than the file"},
           {R"("a":{"dtype":"F32","shape":[4294967296,4294967297],"data_offsets":[0,16]})", "larger than the file"},
           {R"("a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],)"
            R"("data_offsets":[8,16]})",
            "overlap"},
           {ok + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]})", "no tensor holds"},
           {ok, "no tensor holds"},
           {R"("a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]})", "truncated"},
           {R"("a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]})", "does not match its shape"},
           {R"("a":{"dtype":"F16","shape":[8],"data_offsets":[0,16]})", "F32 only"},
           {R"("a":{"dtype":7,"shape":[4],"data_offsets":[0,16]})", "F32 only"},
           {R"("a":{"dtype":"F32","shape":4,"data_offsets":[0,16]})", "bad shape"},
           {R"("a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]})", "bad shape"},
           {R"("a":{"dtype":"F32","shape":[4],"data_offsets":[-1,15]})", "bad data_offsets"},
           {R"("a":{"dtype":"F32","shape":[4]})", "malformed header entry"},
           {R"("__metadata__":{"k":5},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]})", "not a string"},
       }) {
    SCOPED_TRACE(c.tensors);
    const std::string e = error_of(file_of(header(c.tensors), data));
    EXPECT_NE(e.find(c.needle), std::string::npos) << e;
  }
  EXPECT_NE(error_of(file_of("{\"a\": [", data)).find("not JSON"), std::string::npos);
  std::string huge = file_of("{}", "");
  huge[7] = '\x40';  // a header length of 2^62
  EXPECT_NE(error_of(huge).find("header length"), std::string::npos);
}

TEST_F(SafeTensorsFiles, ChecksumsCatchAFlippedByteAndOlderFilesLoad) {
  SafeTensor t{{3, 2}, {1, 2, 3, 4, 5, 6}}, u{{2}, {7, 8}};
  const std::string good = encode_safetensors({{"t", &t}, {"u", &u}}, {{"manylm.step", "12"}});
  const std::string path = dir_ + "/f.safetensors";
  test_util::write_bytes(path, good);
  const SafeTensorsFile f = load_safetensors(path);
  EXPECT_TRUE(f.checksummed);
  EXPECT_EQ(f.tensors.at("u").values, u.values);
  std::string flipped = good;
  flipped[flipped.size() - 5] ^= 0x01;  // a bit of t's or u's data
  EXPECT_NE(error_of(flipped).find("does not match its CRC-32C"), std::string::npos);
  std::string step = good;
  const size_t at = step.find("\"12\"");
  ASSERT_NE(at, std::string::npos);
  step[at + 2] = '3';  // manylm.step 13: the header stays valid JSON of the same length
  EXPECT_NE(error_of(step).find("metadata (training state, step, model) does not match"), std::string::npos);
  // Without its checksums entry (as files before them): loads, marked unverified.
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(static_cast<unsigned char>(good[i])) << (8 * i);
  json h = json::parse(good.substr(8, n));
  h["__metadata__"].erase("manylm.checksums");
  test_util::write_bytes(path, file_of(h.dump(), good.substr(8 + n)));
  const SafeTensorsFile old = load_safetensors(path);
  EXPECT_FALSE(old.checksummed);
  EXPECT_EQ(old.tensors.at("t").values, t.values);
}

TEST(TrainStateRanges, EveryFieldIsChecked) {
  Config c;
  c.lr = 1.0;
  c.batch = 4;
  c.bptt = 5;
  const int64_t windows = 100;
  TrainState good;
  good.step = 250, good.epoch = 2, good.window = 50;
  good.sched.lr = 0.5;
  good.epoch_tokens = 50 * 20, good.train_tokens = 250 * 20;
  good.epoch_loss = 5000, good.running_loss = 5.1;
  check_train_state(good, c, windows, "s");
  struct Case {
    const char* needle;
    void (*edit)(TrainState&);
  };
  for (const Case& k : std::vector<Case>{
           {"'window'", [](TrainState& s) { s.window = 99999999; }},
           {"'step'", [](TrainState& s) { s.step = -5; }},
           {"'epoch'", [](TrainState& s) { s.epoch = -3; }},
           {"windows per epoch", [](TrainState& s) { s.step = 251; }},
           {"windows per epoch", [](TrainState& s) { s.epoch = 1000000; }},
           {"'epoch'", [](TrainState& s) { s.epoch = std::numeric_limits<int64_t>::max() / 2; }},
           {"'lr'", [](TrainState& s) { s.sched.lr = 2.0; }},
           {"'lr'", [](TrainState& s) { s.sched.lr = 0; }},
           {"'lr'", [](TrainState& s) { s.sched.lr = std::numeric_limits<double>::quiet_NaN(); }},
           {"'best_epoch'", [](TrainState& s) { s.sched.best_epoch = 7; }},
           {"'last_valid'", [](TrainState& s) { s.sched.last_valid = -1; }},
           {"'rollbacks'", [](TrainState& s) { s.sched.rollbacks = -1; }},
           {"'rollbacks'", [](TrainState& s) { s.sched.rollbacks = 61; }},
           {"'epoch_tokens'", [](TrainState& s) { s.epoch_tokens = 50 * 20 + 1; }},
           {"'train_tokens'", [](TrainState& s) { s.train_tokens = -1; }},
           {"'epoch_loss'", [](TrainState& s) { s.epoch_loss = -1; }},
           {"'train_seconds'", [](TrainState& s) { s.train_seconds = -1; }},
           {"'average_count'", [](TrainState& s) { s.average_count = 251; }},
           {"'average_start'", [](TrainState& s) { s.average_start = 5; }},
           {"'running_loss'", [](TrainState& s) { s.running_loss = std::numeric_limits<double>::infinity(); }},
       }) {
    SCOPED_TRACE(k.needle);
    TrainState s = good;
    k.edit(s);
    const std::string e = user_error([&] { check_train_state(s, c, windows, "state.safetensors"); });
    EXPECT_NE(e.find("state.safetensors"), std::string::npos) << e;
    EXPECT_NE(e.find(k.needle), std::string::npos) << e;
  }
}

TEST(ModelDescription, AnotherModelOrVocabularyIsRefusedAnOlderDescriptionPasses) {
  SafeTensorsFile f;
  const std::string run =
      R"({"activation":"tanh","cell":"elman","embed":8,"hidden":8,"layers":1,"tokens":"word","vocab":12,)"
      R"("vocab_crc32c":"0badf00d"})";
  f.metadata["manylm"] = run;
  check_described_model(f, "m", run);
  f.metadata["manylm"] = R"({"activation":"relu","cell":"elman","embed":8,"hidden":8,"layers":1,"vocab":12})";
  EXPECT_NE(user_error([&] { check_described_model(f, "m", run); }).find("activation"), std::string::npos);
  f.metadata["manylm"] = R"({"activation":"tanh","cell":"elman","embed":8,"hidden":8,"layers":1,"vocab":12})";
  check_described_model(f, "m", run);  // written before the vocabulary's CRC was recorded
  f.metadata["manylm"] = R"({"activation":"tanh","vocab":12,"vocab_crc32c":"12345678"})";
  EXPECT_NE(user_error([&] { check_described_model(f, "m", run); }).find("another vocabulary"), std::string::npos);
  f.metadata.erase("manylm");
  check_described_model(f, "m", run);  // not a manylm file: names and shapes decide
}

}  // namespace
}  // namespace manylm
