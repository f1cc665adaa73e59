// data_test.cc — src/data on small real files written into a fresh temporary directory per test: the
// streaming reader (word and character mode, line ends, CRLF, byte-order mark, block boundaries, NUL
// bytes, invalid UTF-8, a 10 MB file without a newline), the vocabulary (order, specials, --vocab-size,
// --min-count, JSON round trip), the token-id cache (hits, stale and damaged entries, oov counting) and
// the Batcher's exact windows. Not the command line (cli_test.cc).
#include <gtest/gtest.h>

#include <stdlib.h>
#include "test_util.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "data/text_reader.h"
#include "data/vocab.h"

namespace manylm {
namespace {

namespace fs = std::filesystem;

// A fresh directory under $TMPDIR (mkdtemp), removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "manylm-data-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `bytes` (exactly, binary) to path()/name and returns the full path.
  std::string write(const std::string& name, const std::string& bytes) const {
    const std::string p = path_ + "/" + name;
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) throw std::runtime_error("cannot write " + p);
    return p;
  }

 private:
  std::string path_;
};

// Every token in order, "<EOL>" for each end-of-line the reader reports.
std::vector<std::string> read_all(const std::string& path, TokenMode mode, int64_t* count = nullptr) {
  std::vector<std::string> out;
  const int64_t n = read_tokens(
      path, mode, [&](std::string_view w) { out.emplace_back(w); }, [&] { out.push_back("<EOL>"); });
  if (count) *count = n;
  return out;
}

using test_util::user_error;

void expect_mentions(const std::string& msg, std::initializer_list<std::string> needles) {
  for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' missing from: " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "an error is one line: " << msg;
}

using Tokens = std::vector<std::string>;
constexpr size_t kBlock = 1 << 20;  // text_reader.cc reads in blocks of this size

// ---------------------------------------------------------------------------------------------
// Word mode

TEST(TextReaderWord, OneEndOfLinePerLineIncludingAnUnterminatedLastLine) {
  TempDir d;
  int64_t n = 0;
  EXPECT_EQ(read_all(d.write("a.txt", "the cat\nsat on\nthe mat"), TokenMode::Word, &n),
            (Tokens{"the", "cat", "<EOL>", "sat", "on", "<EOL>", "the", "mat", "<EOL>"}));
  EXPECT_EQ(n, 6);  // end-of-lines are not counted as tokens
  // The same text with a final '\n' gives the same tokens: no extra empty line.
  EXPECT_EQ(read_all(d.write("b.txt", "the cat\nsat on\nthe mat\n"), TokenMode::Word),
            (Tokens{"the", "cat", "<EOL>", "sat", "on", "<EOL>", "the", "mat", "<EOL>"}));
}

TEST(TextReaderWord, EmptyLinesGiveEndOfLine) {
  TempDir d;
  EXPECT_EQ(read_all(d.write("a.txt", "a\n\n\nb\n"), TokenMode::Word),
            (Tokens{"a", "<EOL>", "<EOL>", "<EOL>", "b", "<EOL>"}));
  EXPECT_EQ(read_all(d.write("b.txt", "\n"), TokenMode::Word), (Tokens{"<EOL>"}));
  EXPECT_EQ(read_all(d.write("c.txt", ""), TokenMode::Word), (Tokens{}));
}

TEST(TextReaderWord, TabsAndRunsOfSpacesSeparateWords) {
  TempDir d;
  EXPECT_EQ(read_all(d.write("a.txt", "  a\t\tb   c \t\n\td  \n"), TokenMode::Word),
            (Tokens{"a", "b", "c", "<EOL>", "d", "<EOL>"}));
  // A line of blanks only is still a line.
  EXPECT_EQ(read_all(d.write("b.txt", " \t "), TokenMode::Word), (Tokens{"<EOL>"}));
}

TEST(TextReaderWord, CrLfReadsAsLf) {
  TempDir d;
  const std::string lf = d.write("lf.txt", "the cat\nsat\n\non the mat\n");
  const std::string crlf = d.write("crlf.txt", "the cat\r\nsat\r\n\r\non the mat\r\n");
  EXPECT_EQ(read_all(crlf, TokenMode::Word), read_all(lf, TokenMode::Word));
  // Same ids, with the vocabulary of either file.
  const Vocab v = build_vocab(lf, TokenMode::Word, 0, 1);
  const Vocab vcr = build_vocab(crlf, TokenMode::Word, 0, 1);
  EXPECT_EQ(v.hash(), vcr.hash());
  const TokenIds a = TokenIds::load(lf, v, ""), b = TokenIds::load(crlf, v, "");
  EXPECT_EQ(std::vector<int32_t>(a.ids().begin(), a.ids().end()), std::vector<int32_t>(b.ids().begin(), b.ids().end()));
  EXPECT_EQ(a.size(), 10);
  // Character mode: "\r\n" is one '\n' token too.
  EXPECT_EQ(read_all(d.write("c.txt", "a\r\nb\r\n"), TokenMode::Char), (Tokens{"a", "\n", "b", "\n"}));
}

// Old Mac text: a CR alone ends a line as LF does (the file was one "line" before: an "empty corpus" or one
// sentence), also as the last byte; CRLF stays one line end.
TEST(TextReaderWord, LoneCrEndsALine) {
  TempDir d;
  const std::string lf = d.write("lf2.txt", "the cat\nsat\n\non the mat\n");
  EXPECT_EQ(read_all(d.write("cr.txt", "the cat\rsat\r\ron the mat\r"), TokenMode::Word),
            read_all(lf, TokenMode::Word));
  EXPECT_EQ(read_all(d.write("mixed.txt", "the cat\r\nsat\r\ron the mat"), TokenMode::Word),
            read_all(lf, TokenMode::Word));
  EXPECT_EQ(read_all(d.write("c2.txt", "a\rb\r\nc\r"), TokenMode::Char), (Tokens{"a", "\n", "b", "\n", "c", "\n"}));
}

TEST(TextReaderWord, CrLfSplitAcrossReadBlocks) {
  TempDir d;
  // "x x x ... x" up to the last byte of the first 1 MiB block, which is '\r'; '\n' opens the second.
  std::string s;
  for (size_t i = 0; i + 1 < kBlock; ++i) s.push_back(i % 2 ? ' ' : 'x');
  s += "\r\nb\n";
  ASSERT_EQ(s[kBlock - 1], '\r');
  const Tokens t = read_all(d.write("a.txt", s), TokenMode::Word);
  const size_t xs = kBlock / 2;
  ASSERT_EQ(t.size(), xs + 3);
  EXPECT_EQ(t[xs - 1], "x");
  EXPECT_EQ(t[xs], "<EOL>");
  EXPECT_EQ(t[xs + 1], "b");
  EXPECT_EQ(t[xs + 2], "<EOL>");
}

TEST(TextReaderWord, ByteOrderMarkIsSkipped) {
  TempDir d;
  EXPECT_EQ(read_all(d.write("a.txt", "\xEF\xBB\xBFthe cat\n"), TokenMode::Word), (Tokens{"the", "cat", "<EOL>"}));
  EXPECT_EQ(read_all(d.write("b.txt", "\xEF\xBB\xBF\xC3\xA9t\xC3\xA9"), TokenMode::Char),
            (Tokens{"\xC3\xA9", "t", "\xC3\xA9"}));
  // Only at the very start: a BOM later in the text is an ordinary (zero-width) character.
  EXPECT_EQ(read_all(d.write("c.txt", "a\xEF\xBB\xBF"), TokenMode::Char), (Tokens{"a", "\xEF\xBB\xBF"}));
}

TEST(TextReaderWord, TenMegabytesWithoutANewline) {
  TempDir d;
  std::string s;
  s.reserve(10'500'000);
  int64_t words = 0;
  while (s.size() < 10'000'000) {
    s += 'w';
    s += std::to_string(words % 1000);
    s += ' ';
    ++words;
  }
  const std::string path = d.write("big.txt", s);
  int64_t eols = 0, first_bad = -1, seen = 0;
  const int64_t n = read_tokens(
      path, TokenMode::Word,
      [&](std::string_view w) {
        if (first_bad < 0 && (w.size() < 2 || w[0] != 'w' || w.substr(1) != std::to_string(seen % 1000)))
          first_bad = seen;
        ++seen;
      },
      [&] { ++eols; });
  EXPECT_EQ(n, words);
  EXPECT_EQ(seen, words);
  EXPECT_EQ(first_bad, -1) << "words split or merged at a block boundary";
  EXPECT_EQ(eols, 1);  // the one, unterminated line
  const Vocab v = build_vocab(path, TokenMode::Word, 0, 1);
  EXPECT_EQ(v.size(), 1000 + 2);
  const TokenIds ids = TokenIds::load(path, v, d.path() + "/cache");
  EXPECT_EQ(ids.size(), words + 1);
  EXPECT_EQ(ids.ids().back(), v.eos());
  EXPECT_EQ(ids.oov(), 0);
}

TEST(TextReaderWord, OverlongWordFailsWithFileAndOffset) {
  TempDir d;
  const std::string path = d.write("a.txt", "ok " + std::string(70000, 'a'));
  expect_mentions(user_error([&] { read_all(path, TokenMode::Word); }), {path, "offset 65539"});
}

// ---------------------------------------------------------------------------------------------
// Character mode

TEST(TextReaderChar, MultiByteCharactersAreSingleTokensAndNewlineIsAToken) {
  TempDir d;
  int64_t n = 0;
  // a, é (2 bytes), € (3 bytes), 😀 (4 bytes), space, newline, z
  const Tokens t = read_all(d.write("a.txt", "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80 \nz"), TokenMode::Char, &n);
  EXPECT_EQ(t, (Tokens{"a", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", " ", "\n", "z"}));
  EXPECT_EQ(n, 7);
  // No end-of-line callbacks, no <eos> in a character vocabulary.
  const Vocab v = build_vocab(d.path() + "/a.txt", TokenMode::Char, 0, 1);
  EXPECT_EQ(v.eos(), -1);
  EXPECT_GE(v.unk(), 0);
  EXPECT_GE(v.find("\n"), 0);
  EXPECT_GE(v.find("\xF0\x9F\x98\x80"), 0);
  EXPECT_EQ(v.size(), 8);
  // Texts start from a newline, not from <unk> (unseen in training; here also the largest id).
  EXPECT_GT(v.unk(), v.find("\n"));
  EXPECT_EQ(v.start(), v.find("\n"));
}

TEST(TextReaderChar, CharacterSplitAcrossReadBlocks) {
  TempDir d;
  std::string s(kBlock - 1, 'a');
  s += "\xE2\x82\xAC!";  // € starts at the last byte of the first block
  int64_t n = 0;
  const Tokens t = read_all(d.write("a.txt", s), TokenMode::Char, &n);
  ASSERT_EQ(n, static_cast<int64_t>(kBlock + 1));
  EXPECT_EQ(t[kBlock - 2], "a");
  EXPECT_EQ(t[kBlock - 1], "\xE2\x82\xAC");
  EXPECT_EQ(t[kBlock], "!");
}

TEST(TextReaderChar, InvalidUtf8FailsWithFileAndOffset) {
  TempDir d;
  const std::string bad_lead = d.write("lead.txt",
                                       "ab\xFF"
                                       "c");
  expect_mentions(user_error([&] { read_all(bad_lead, TokenMode::Char); }), {bad_lead, "offset 2", "UTF-8"});
  // A lead byte followed by a non-continuation byte: the offset is the offending byte's.
  const std::string bad_cont = d.write("cont.txt", "xy\xC3(z");
  expect_mentions(user_error([&] { read_all(bad_cont, TokenMode::Char); }), {bad_cont, "offset 3", "UTF-8"});
  // Overlong encodings (C0, C1) and a stray continuation byte are invalid too.
  const std::string overlong = d.write("overlong.txt", "\xC0\xAF");
  expect_mentions(user_error([&] { read_all(overlong, TokenMode::Char); }), {overlong, "offset 0"});
  const std::string stray = d.write("stray.txt", "a\x80");
  expect_mentions(user_error([&] { read_all(stray, TokenMode::Char); }), {stray, "offset 1"});
  // Offsets count from the start of the file, past the first read block.
  std::string big(kBlock + 5, 'a');
  big += "\xFE";
  const std::string far = d.write("far.txt", big);
  expect_mentions(user_error([&] { read_all(far, TokenMode::Char); }), {far, "offset " + std::to_string(kBlock + 5)});
  // Three- and four-byte forms that decode but are not UTF-8: overlong, a UTF-16 surrogate, above U+10FFFF.
  for (const char* bytes : {"x\xE0\x80\xAF", "x\xED\xA0\x80", "x\xF4\x90\x80\x80", "x\xF0\x80\x80\xAF"}) {
    const std::string p = d.write("form.txt", bytes);
    expect_mentions(user_error([&] { read_all(p, TokenMode::Char); }), {p, "offset 1", "UTF-8"});
  }
  EXPECT_EQ(read_all(d.write("ok.txt", "\xF0\x9F\x98\x80\xED\x9F\xBF\xF4\x8F\xBF\xBF"), TokenMode::Char),
            (Tokens{"\xF0\x9F\x98\x80", "\xED\x9F\xBF", "\xF4\x8F\xBF\xBF"}));
}

// Word mode checks each word: words become vocabulary entries, JSON strings, which must be UTF-8. The offset
// is the word's.
TEST(TextReaderWord, InvalidUtf8FailsWithFileAndTheWordsOffset) {
  TempDir d;
  const std::string latin1 = d.write("latin1.txt", "le caf\xE9 noir\n");
  expect_mentions(user_error([&] { read_all(latin1, TokenMode::Word); }), {latin1, "offset 3", "UTF-8"});
  const std::string surrogate = d.write("surrogate.txt", "a b\n\xED\xA0\x80x\n");
  expect_mentions(user_error([&] { read_all(surrogate, TokenMode::Word); }), {surrogate, "offset 4"});
  EXPECT_EQ(read_all(d.write("ok.txt",
                             "caf\xC3\xA9 \xE2\x82\xAC"
                             "5\n"),
                     TokenMode::Word),
            (Tokens{"caf\xC3\xA9",
                    "\xE2\x82\xAC"
                    "5",
                    "<EOL>"}));
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_FALSE(valid_utf8("\xC3"));
  EXPECT_FALSE(valid_utf8("\xC1\xBF"));
}

TEST(TextReaderChar, TruncatedSequenceAtTheEndFails) {
  TempDir d;
  const std::string path = d.write("a.txt", "ok\xE2\x82");
  expect_mentions(user_error([&] { read_all(path, TokenMode::Char); }), {path, "truncated"});
  EXPECT_TRUE(user_error([&] { build_vocab(path, TokenMode::Char, 0, 1); }).find(path) != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// NUL bytes, both modes

TEST(TextReaderBinary, NulBytesFailWithFileAndOffsetInBothModes) {
  TempDir d;
  const std::string path = d.write("bin.txt", std::string("abc de\nf\0gh", 11));
  for (TokenMode m : {TokenMode::Word, TokenMode::Char}) {
    SCOPED_TRACE(token_mode_name(m));
    expect_mentions(user_error([&] { read_all(path, m); }), {path, "NUL", "offset 8"});
    expect_mentions(user_error([&] { build_vocab(path, m, 0, 1); }), {path, "offset 8"});
  }
  // Also at offset 0 (right where a byte-order mark would be looked for).
  const std::string first = d.write("first.txt", std::string("\0ab", 3));
  expect_mentions(user_error([&] { read_all(first, TokenMode::Word); }), {first, "offset 0"});
  // And not confused by a BOM: offsets are file offsets.
  const std::string bom = d.write("bom.txt", std::string("\xEF\xBB\xBF"
                                                         "a\0",
                                                         5));
  expect_mentions(user_error([&] { read_all(bom, TokenMode::Char); }), {bom, "offset 4"});
}

TEST(TextReaderFiles, MissingFileAndDirectoryFailNamingThePath) {
  TempDir d;
  const std::string missing = d.path() + "/nope.txt";
  expect_mentions(user_error([&] { read_all(missing, TokenMode::Word); }), {missing});
  expect_mentions(user_error([&] { read_all(d.path(), TokenMode::Word); }), {d.path(), "directory"});
  expect_mentions(user_error([&] { build_vocab(d.write("empty.txt", ""), TokenMode::Word, 0, 1); }),
                  {d.path() + "/empty.txt", "empty"});
}

// ---------------------------------------------------------------------------------------------
// Vocabulary

std::vector<std::string> words_of(const Vocab& v) {
  std::vector<std::string> w;
  for (int32_t i = 0; i < v.size(); ++i) w.push_back(v.word(i));
  return w;
}
std::vector<int64_t> counts_of(const Vocab& v) {
  std::vector<int64_t> c;
  for (int32_t i = 0; i < v.size(); ++i) c.push_back(v.count(i));
  return c;
}

// b×4, <eos>×3, c×3, zz×2, ab×2, B×2, a×1: ties broken by bytes ("<" < "c"; "B" < "ab" < "zz").
constexpr const char* kCounted = "b c zz\nb b c a ab\nzz B c b ab B\n";

TEST(Vocab, IdsByDescendingCountTiesByBytes) {
  TempDir d;
  const Vocab v = build_vocab(d.write("t.txt", kCounted), TokenMode::Word, 0, 1);
  EXPECT_EQ(words_of(v), (std::vector<std::string>{"b", "<eos>", "c", "B", "ab", "zz", "a", "<unk>"}));
  EXPECT_EQ(counts_of(v), (std::vector<int64_t>{4, 3, 3, 2, 2, 2, 1, 0}));
  EXPECT_EQ(v.eos(), 1);
  EXPECT_EQ(v.unk(), 7);
  EXPECT_EQ(v.find("zz"), 5);
  EXPECT_EQ(v.find("never"), -1);
  EXPECT_EQ(v.id("never"), v.unk());
  // The same text in another order of lines gives the same ids.
  const Vocab w = build_vocab(d.write("u.txt", "zz B c b ab B\nb c zz\nb b c a ab\n"), TokenMode::Word, 0, 1);
  EXPECT_EQ(words_of(w), words_of(v));
  EXPECT_EQ(w.hash(), v.hash());
}

TEST(Vocab, EosAndUnkAlwaysPresent) {
  TempDir d;
  const Vocab v = build_vocab(d.write("t.txt", "x"), TokenMode::Word, 0, 1);
  EXPECT_EQ(words_of(v), (std::vector<std::string>{"<eos>", "x", "<unk>"}));
  EXPECT_EQ(counts_of(v), (std::vector<int64_t>{1, 1, 0}));
  // Even when --vocab-size leaves room for nothing else.
  const Vocab s = build_vocab(d.write("s.txt", kCounted), TokenMode::Word, 3, 1);
  EXPECT_GE(s.eos(), 0);
  EXPECT_GE(s.unk(), 0);
  EXPECT_EQ(s.size(), 3);
  // A literal "<unk>" in the text is the <unk> type, counted with it.
  const Vocab u = build_vocab(d.write("u.txt", "<unk> a <unk>\n"), TokenMode::Word, 0, 1);
  EXPECT_EQ(u.count(u.unk()), 2);
}

TEST(Vocab, VocabSizeMapsTheRestToUnkAndAddsTheirCounts) {
  TempDir d;
  const std::string path = d.write("t.txt", kCounted);
  const Vocab v = build_vocab(path, TokenMode::Word, 5, 1);  // <eos>, <unk> and the 3 most frequent others
  // <unk> carries ab×2 + zz×2 + a×1 = 5 and takes its place in the order by count.
  EXPECT_EQ(words_of(v), (std::vector<std::string>{"<unk>", "b", "<eos>", "c", "B"}));
  EXPECT_EQ(counts_of(v), (std::vector<int64_t>{5, 4, 3, 3, 2}));
  EXPECT_EQ(v.count(v.unk()), 5);
  const TokenIds ids = TokenIds::load(path, v, "");
  EXPECT_EQ(ids.oov(), 5);
  int64_t unk = 0;
  for (int32_t id : ids.ids()) unk += id == v.unk();
  EXPECT_EQ(unk, 5);
  // The counts still add up to every token of the file.
  int64_t total = 0;
  for (int64_t c : counts_of(v)) total += c;
  EXPECT_EQ(total, ids.size());
}

TEST(Vocab, MinCountMapsRareWordsToUnk) {
  TempDir d;
  const std::string path = d.write("t.txt", kCounted);
  const Vocab v = build_vocab(path, TokenMode::Word, 0, 3);
  EXPECT_EQ(words_of(v), (std::vector<std::string>{"<unk>", "b", "<eos>", "c"}));
  EXPECT_EQ(counts_of(v), (std::vector<int64_t>{7, 4, 3, 3}));
  // Both limits at once: the stricter one wins.
  const Vocab w = build_vocab(path, TokenMode::Word, 3, 2);
  EXPECT_EQ(w.size(), 3);
  EXPECT_EQ(w.count(w.unk()), 3 + 2 + 2 + 2 + 1);
}

TEST(Vocab, JsonRoundTrip) {
  TempDir d;
  for (TokenMode m : {TokenMode::Word, TokenMode::Char}) {
    SCOPED_TRACE(token_mode_name(m));
    const Vocab v = build_vocab(d.write("t.txt", std::string(kCounted) + "\xC3\xA9 \"q\" \\\n"), m, 0, 1);
    const Vocab r = Vocab::from_json(v.to_json(), "vocab.json");
    EXPECT_EQ(r.mode(), v.mode());
    EXPECT_EQ(words_of(r), words_of(v));
    EXPECT_EQ(counts_of(r), counts_of(v));
    EXPECT_EQ(r.eos(), v.eos());
    EXPECT_EQ(r.unk(), v.unk());
    EXPECT_EQ(r.hash(), v.hash());
    EXPECT_EQ(r.to_json(), v.to_json());
  }
}

TEST(Vocab, FromJsonOfGarbageFailsNamingThePath) {
  const std::string path = "/some/run/vocab.json";
  for (const char* text :
       {"", "\x89PNG\r\n\x1a\n", "{\"format\": \"manylm-vocab-1\"", "[1, 2, 3]",
        "{\"format\": \"other\", \"words\": [], \"counts\": []}",
        "{\"format\": \"manylm-vocab-1\", \"tokens\": \"word\", \"words\": [\"a\"], \"counts\": [1, 2]}",
        "{\"format\": \"manylm-vocab-1\", \"tokens\": \"word\", \"words\": [\"a\"], \"counts\": [\"x\"]}",
        "{\"format\": \"manylm-vocab-1\", \"tokens\": \"word\", \"words\": [\"a\"], \"counts\": [1]}",
        "{\"format\": \"manylm-vocab-1\", \"tokens\": \"bytes\", \"words\": [\"<unk>\"], \"counts\": [1]}",
        "{\"format\": \"manylm-vocab-1\", \"tokens\": \"word\", \"words\": [\"<unk>\"], \"counts\": [1]}",
        "{\"format\": \"manylm-vocab-1\", \"words\": [\"<unk>\"], \"counts\": [1]}",
        "{\"format\": 1, \"words\": [\"<unk>\"], \"counts\": [1]}",
        "{\"format\": \"manylm-vocab-1\", \"tokens\": \"word\", \"words\": [\"<eos>\", \"<unk>\", \"a\", \"a\"], "
        "\"counts\": [1, 1, 1, 1]}",
        "{\"format\": \"manylm-vocab-1\", \"tokens\": \"word\", \"words\": [\"<eos>\", \"<unk>\"], \"counts\": [1, "
        "-1]}"}) {
    SCOPED_TRACE(text);
    expect_mentions(user_error([&] { Vocab::from_json(text, path); }), {path});
  }
}

TEST(Vocab, FromJsonNamesAWordListedTwice) {
  const std::string text =
      "{\"format\": \"manylm-vocab-1\", \"tokens\": \"word\", \"words\": [\"<eos>\", \"<unk>\", \"b\", \"a\", \"b\"], "
      "\"counts\": [1, 1, 3, 2, 1]}";
  expect_mentions(user_error([&] { Vocab::from_json(text, "v.json"); }), {"v.json", "'b' twice", "ids 2 and 4"});
}

// ---------------------------------------------------------------------------------------------
// Token-id cache

std::vector<int32_t> ids_of(const TokenIds& t) { return {t.ids().begin(), t.ids().end()}; }

std::vector<std::string> cache_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))  // the ids (beside them: each text's record, *.shard)
    if (e.path().extension() == ".ids") out.push_back(e.path().string());
  return out;
}

TEST(TokenCache, SecondLoadComesFromTheCacheWithIdenticalIds) {
  TempDir d;
  const std::string path = d.write("t.txt", kCounted);
  const std::string cache = d.path() + "/cache";
  const Vocab v = build_vocab(path, TokenMode::Word, 0, 1);
  const TokenIds plain = TokenIds::load(path, v, "");
  EXPECT_FALSE(plain.from_cache());
  const TokenIds first = TokenIds::load(path, v, cache);
  EXPECT_FALSE(first.from_cache());
  ASSERT_EQ(cache_files(cache).size(), 1u);
  const TokenIds second = TokenIds::load(path, v, cache);
  EXPECT_TRUE(second.from_cache());
  EXPECT_EQ(ids_of(second), ids_of(first));
  EXPECT_EQ(ids_of(second), ids_of(plain));
  EXPECT_EQ(second.size(), 3 + 5 + 6 + 3);
  // The ids are the vocabulary's: b c zz <eos> ...
  EXPECT_EQ(std::vector<int32_t>(second.ids().begin(), second.ids().begin() + 4),
            (std::vector<int32_t>{v.find("b"), v.find("c"), v.find("zz"), v.eos()}));
}

TEST(TokenCache, ChangedFileIsReencoded) {
  TempDir d;
  const std::string path = d.write("t.txt", "a b a\n");
  const std::string cache = d.path() + "/cache";
  const Vocab v = build_vocab(d.write("train.txt", "a b\n"), TokenMode::Word, 0, 1);
  EXPECT_FALSE(TokenIds::load(path, v, cache).from_cache());
  EXPECT_TRUE(TokenIds::load(path, v, cache).from_cache());
  d.write("t.txt", "b a b\n");  // same size, same vocabulary, different content
  const TokenIds t = TokenIds::load(path, v, cache);
  EXPECT_FALSE(t.from_cache());
  EXPECT_EQ(ids_of(t), (std::vector<int32_t>{v.find("b"), v.find("a"), v.find("b"), v.eos()}));
  // A different vocabulary over the same text is a different entry too.
  const Vocab w = build_vocab(d.write("train2.txt", "b b a\n"), TokenMode::Word, 0, 1);
  ASSERT_NE(w.find("b"), v.find("b"));
  const TokenIds u = TokenIds::load(path, w, cache);
  EXPECT_FALSE(u.from_cache());
  EXPECT_EQ(ids_of(u), (std::vector<int32_t>{w.find("b"), w.find("a"), w.find("b"), w.eos()}));
}

// Damages the one cache entry in `cache` with `damage`, then checks the next load ignores it, re-encodes
// the text correctly, and rewrites the entry so that the load after that is a cache hit again.
template <typename Damage>
void expect_damaged_entry_rebuilt(const std::string& cache, const std::string& path, const Vocab& v, Damage damage) {
  const std::vector<int32_t> want = ids_of(TokenIds::load(path, v, ""));
  (void)TokenIds::load(path, v, cache);
  auto files = cache_files(cache);
  ASSERT_EQ(files.size(), 1u);
  std::string bytes;
  {
    std::ifstream f(files[0], std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  damage(bytes);
  {
    std::ofstream f(files[0], std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const TokenIds t = TokenIds::load(path, v, cache);
  EXPECT_FALSE(t.from_cache()) << "a damaged cache entry was used";
  EXPECT_EQ(ids_of(t), want);
  const TokenIds again = TokenIds::load(path, v, cache);
  EXPECT_TRUE(again.from_cache()) << "the damaged entry was not rebuilt";
  EXPECT_EQ(ids_of(again), want);
}

TEST(TokenCache, DamagedCacheFileIsIgnoredAndRebuilt) {
  const auto cases = std::vector<std::pair<const char*, std::function<void(std::string&)>>>{
      {"truncated by 4 bytes", [](std::string& b) { b.resize(b.size() - 4); }},
      {"truncated inside the header", [](std::string& b) { b.resize(10); }},
      {"empty", [](std::string& b) { b.clear(); }},
      {"one id too many", [](std::string& b) { b.append(4, '\0'); }},
      {"bad magic", [](std::string& b) { b[0] = 'X'; }},
      {"wrong key", [](std::string& b) { b[8] ^= 1; }},
      {"negative count", [](std::string& b) { b[16 + 7] = '\x80'; }},
      {"a count that wraps around when multiplied by 4",  // 2^62 ids in a header-only file
       [](std::string& b) {
         b.resize(32);
         for (int k = 16; k < 24; ++k) b[k] = 0;
         b[16 + 7] = '\x40';
       }},
      {"an id out of the vocabulary", [](std::string& b) { b[b.size() - 1] = '\x7f'; }},
      {"a negative id", [](std::string& b) { b[b.size() - 5] = '\xff'; }},
  };
  for (const auto& [what, damage] : cases) {
    SCOPED_TRACE(what);
    TempDir d;
    const std::string path = d.write("t.txt", kCounted);
    const Vocab v = build_vocab(path, TokenMode::Word, 0, 1);
    expect_damaged_entry_rebuilt(d.path() + "/cache", path, v, damage);
  }
}

TEST(TokenCache, UnwritableCacheDirectoryDoesNotStopLoading) {
  TempDir d;
  const std::string path = d.write("t.txt", kCounted);
  const std::string not_a_dir = d.write("file", "x");  // a file where the cache directory would be
  const Vocab v = build_vocab(path, TokenMode::Word, 0, 1);
  const TokenIds t = TokenIds::load(path, v, not_a_dir + "/cache");
  EXPECT_FALSE(t.from_cache());
  EXPECT_EQ(t.size(), 17);
}

TEST(TokenCache, CountsOutOfVocabularyTokens) {
  TempDir d;
  const std::string cache = d.path() + "/cache";
  const Vocab v = build_vocab(d.write("train.txt", "a b c\n"), TokenMode::Word, 0, 1);
  // "<unk>" written in the text is not out of vocabulary; x, y and x again are.
  const std::string path = d.write("valid.txt", "a x <unk>\ny b x\n");
  const TokenIds t = TokenIds::load(path, v, cache);
  EXPECT_EQ(t.oov(), 3);
  EXPECT_EQ(ids_of(t),
            (std::vector<int32_t>{v.find("a"), v.unk(), v.unk(), v.eos(), v.unk(), v.find("b"), v.unk(), v.eos()}));
  const TokenIds c = TokenIds::load(path, v, cache);
  EXPECT_TRUE(c.from_cache());
  EXPECT_EQ(c.oov(), 3);  // kept in the cache entry
  // Character mode: unseen characters.
  const Vocab cv = build_vocab(d.write("ctrain.txt", "ab\n"), TokenMode::Char, 0, 1);
  const TokenIds ct = TokenIds::load(d.write("cvalid.txt", "a\xC3\xA9z\n"), cv, cache);
  EXPECT_EQ(ct.oov(), 2);
  EXPECT_EQ(ids_of(ct), (std::vector<int32_t>{cv.find("a"), cv.unk(), cv.unk(), cv.find("\n")}));
}

// ---------------------------------------------------------------------------------------------
// Batcher

std::vector<int32_t> iota_ids(int32_t n) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = 100 + i;
  return v;
}

TEST(Batcher, ExactWindowsStreamsAndShortLastWindow) {
  // 23 tokens, B = 3: streams of L = 7 (100..106, 107..113, 114..120), 121 and 122 dropped.
  const std::vector<int32_t> ids = iota_ids(23);
  const Batcher b(ids, 3, 4, "t.txt");
  EXPECT_EQ(b.streams(), 3);
  EXPECT_EQ(b.stream_length(), 7);
  EXPECT_EQ(b.windows(), 2);  // 6 predictions per stream: 4 + 2
  EXPECT_EQ(b.targets(), 18);
  std::vector<int32_t> x, y;
  // Window 0: positions 0..3 of every stream, time-major (t, b).
  ASSERT_EQ(b.window(0, 0, 3, x, y), 4);
  EXPECT_EQ(x, (std::vector<int32_t>{100, 107, 114, 101, 108, 115, 102, 109, 116, 103, 110, 117}));
  EXPECT_EQ(y, (std::vector<int32_t>{101, 108, 115, 102, 109, 116, 103, 110, 117, 104, 111, 118}));
  // Window 1: the short last window, positions 4..5; its targets end at the last token of each stream.
  ASSERT_EQ(b.window(1, 0, 3, x, y), 2);
  EXPECT_EQ(x, (std::vector<int32_t>{104, 111, 118, 105, 112, 119}));
  EXPECT_EQ(y, (std::vector<int32_t>{105, 112, 119, 106, 113, 120}));
  // Lanes [1, 3) of window 0 and lane [2, 3) of window 1.
  ASSERT_EQ(b.window(0, 1, 3, x, y), 4);
  EXPECT_EQ(x, (std::vector<int32_t>{107, 114, 108, 115, 109, 116, 110, 117}));
  EXPECT_EQ(y, (std::vector<int32_t>{108, 115, 109, 116, 110, 117, 111, 118}));
  ASSERT_EQ(b.window(1, 2, 3, x, y), 2);
  EXPECT_EQ(x, (std::vector<int32_t>{118, 119}));
  EXPECT_EQ(y, (std::vector<int32_t>{119, 120}));
}

TEST(Batcher, EveryTokenOfEveryStreamIsPredictedOnce) {
  for (int32_t n : {4, 5, 17, 40}) {
    for (int64_t B : {1, 2, 3}) {
      for (int64_t T : {1, 3, 5, 100}) {
        const std::vector<int32_t> ids = iota_ids(n);
        if (n / B < 2) continue;
        SCOPED_TRACE(::testing::Message() << "n=" << n << " B=" << B << " T=" << T);
        const Batcher b(ids, B, T, "t.txt");
        const int64_t L = n / B;
        std::vector<int> seen(static_cast<size_t>(n), 0);
        std::vector<int32_t> x, y;
        int64_t total = 0;
        for (int64_t k = 0; k < b.windows(); ++k) {
          const int64_t len = b.window(k, 0, B, x, y);
          ASSERT_GT(len, 0);
          ASSERT_LE(len, T);
          ASSERT_EQ(x.size(), static_cast<size_t>(len * B));
          for (size_t i = 0; i < y.size(); ++i) {
            ASSERT_EQ(y[i], x[i] + 1);
            ++seen[static_cast<size_t>(y[i] - 100)];
          }
          total += len * B;
        }
        EXPECT_EQ(total, b.targets());
        for (int32_t i = 0; i < n; ++i)
          EXPECT_EQ(seen[static_cast<size_t>(i)], i < B * L && i % L != 0 ? 1 : 0) << "token " << i;
      }
    }
  }
}

TEST(Batcher, CorpusTooSmallFailsNamingTheFileAndBatch) {
  const std::vector<int32_t> three = iota_ids(3);
  expect_mentions(user_error([&] { Batcher(three, 2, 5, "/data/tiny.txt"); }),
                  {"/data/tiny.txt", "too small", "--batch"});
  const std::vector<int32_t> none;
  expect_mentions(user_error([&] { Batcher(none, 1, 5, "empty.txt"); }), {"empty.txt", "too small"});
  expect_mentions(user_error([&] { Batcher(three, 2, 5, "valid.txt", "--eval-batch"); }),
                  {"valid.txt", "--eval-batch"});
  const std::vector<int32_t> one = iota_ids(1);
  expect_mentions(user_error([&] { Batcher(one, 1, 5, "one.txt"); }), {"one.txt"});
  // Just enough: one prediction per stream.
  const std::vector<int32_t> four = iota_ids(4);
  const Batcher b(four, 2, 5, "four.txt");
  EXPECT_EQ(b.windows(), 1);
  std::vector<int32_t> x, y;
  EXPECT_EQ(b.window(0, 0, 2, x, y), 1);
  EXPECT_EQ(x, (std::vector<int32_t>{100, 102}));
  EXPECT_EQ(y, (std::vector<int32_t>{101, 103}));
}

}  // namespace
}  // namespace manylm
