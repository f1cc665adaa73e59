// vocab_file_test.cc — --vocab-file (data/vocab_file.h) on small real files: the three formats (one word per
// line, Kaldi's words.txt, lm1b's word-count list) read and detected, ids in the file's order, <eps> and #0
// skipped, the named unknown and line-end words, words outside mapping to the unknown word, and every error
// as one line naming the file (and line). Also a training run with a vocabulary file, whose vocab.json
// records it. Not the counted vocabulary (data_test.cc).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "data/corpus.h"
#include "data/vocab_file.h"
#include "test_util.h"
#include "train/trainer.h"

namespace manylm {
namespace {

using test_util::make_temp_dir;
using test_util::user_error;
using test_util::write_bytes;

class VocabFile : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir("vocab-file"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& bytes) {
    write_bytes(dir_ + "/" + name, bytes);
    return dir_ + "/" + name;
  }
  std::string dir_;
};

std::vector<std::string> words_of(const Vocab& v) {
  std::vector<std::string> w;
  for (int32_t i = 0; i < v.size(); ++i) w.push_back(v.word(i));
  return w;
}

TEST_F(VocabFile, LinesKeepTheFileOrderAndMapOtherWordsToUnknown) {
  const std::string p = write("v.txt", "the\n<unk>\r\nzebra\n\n<eos>\na\n");
  EXPECT_EQ(detect_vocab_format(p), VocabFormat::Lines);
  const Vocab v = load_vocab_file(p, VocabFormat::Auto, "<unk>", "<eos>");
  EXPECT_EQ(words_of(v), (std::vector<std::string>{"the", "<unk>", "zebra", "<eos>", "a"}));
  EXPECT_EQ(v.unk(), 1);
  EXPECT_EQ(v.eos(), 3);
  const std::string text = write("t.txt", "a zebra b\nthe\n");
  const TokenIds ids = TokenIds::load(text, v, "");
  EXPECT_EQ(std::vector<int32_t>(ids.ids().begin(), ids.ids().end()), (std::vector<int32_t>{4, 2, 1, 3, 0, 3}));
  EXPECT_EQ(ids.oov(), 1);
}

TEST_F(VocabFile, KaldiSkipsEpsAndDisambiguationSymbols) {
  const std::string p =
      write("words.txt", "<eps> 0\n!SIL 1\n<UNK> 2\nhello 3\nworld 5\n#0 6\n<s> 7\n</s> 8\n#12 9\n#x 10\n");
  EXPECT_EQ(detect_vocab_format(p), VocabFormat::Kaldi);
  const Vocab v = load_vocab_file(p, VocabFormat::Auto, "<UNK>", "</s>");
  EXPECT_EQ(words_of(v), (std::vector<std::string>{"!SIL", "<UNK>", "hello", "world", "<s>", "</s>", "#x"}));
  EXPECT_EQ(v.unk(), 1);
  EXPECT_EQ(v.eos(), 5);
  EXPECT_EQ(v.find("<eps>"), -1);
  EXPECT_EQ(v.find("#0"), -1);
  // Without <eps>, ids 0 and 1 on the first two lines say Kaldi.
  EXPECT_EQ(detect_vocab_format(write("w2.txt", "<unk> 0\n<eos> 1\n")), VocabFormat::Kaldi);
}

TEST_F(VocabFile, KaldiIdsRepeatedOrOutOfOrderFailWithOneLine) {
  const std::string rep = write("rep.txt", "<eps> 0\n<unk> 1\na 2\nb 2\n</s> 3\n");
  const std::string e1 = user_error([&] { load_vocab_file(rep, VocabFormat::Kaldi, "<unk>", "</s>"); });
  EXPECT_NE(e1.find(rep + ":4: id 2 of 'b'"), std::string::npos) << e1;
  EXPECT_EQ(e1.find('\n'), std::string::npos);
  const std::string back = write("back.txt", "<eps> 0\n<unk> 2\na 1\n</s> 3\n");
  const std::string e2 = user_error([&] { load_vocab_file(back, VocabFormat::Auto, "<unk>", "</s>"); });
  EXPECT_NE(e2.find(back + ":3: id 1 of 'a' is not above the id 2 of line 2"), std::string::npos) << e2;
  const std::string twice = write("twice.txt", "<eps> 0\n<unk> 1\na 2\na 3\n</s> 4\n");
  const std::string e3 = user_error([&] { load_vocab_file(twice, VocabFormat::Kaldi, "<unk>", "</s>"); });
  EXPECT_NE(e3.find(twice + ":4: the word 'a' is listed twice (lines 3 and 4)"), std::string::npos) << e3;
  const std::string bad = write("bad.txt", "<eps> 0\n<unk> one\n");
  EXPECT_NE(user_error([&] {
              load_vocab_file(bad, VocabFormat::Kaldi, "<unk>", "</s>");
            }).find(bad + ":2: expected 'word id' per line (--vocab-format kaldi)"),
            std::string::npos);
}

TEST_F(VocabFile, Lm1bKeepsItsCountsAndNamesItsSpecials) {
  const std::string p = write("1b_word_vocab.txt", "<S> 0\n</S> 30\n<UNK> 0\nthe 41\n, 39\n");
  EXPECT_EQ(detect_vocab_format(p), VocabFormat::Lm1b);
  const Vocab v = load_vocab_file(p, VocabFormat::Auto, "<UNK>", "</S>");
  EXPECT_EQ(words_of(v), (std::vector<std::string>{"<S>", "</S>", "<UNK>", "the", ","}));
  EXPECT_EQ(v.count(1), 30);
  EXPECT_EQ(v.count(3), 41);
  EXPECT_EQ(v.unk(), 2);
  EXPECT_EQ(v.eos(), 1);
  const TokenIds ids = TokenIds::load(write("t.txt", "the cat ,\n"), v, "");
  EXPECT_EQ(std::vector<int32_t>(ids.ids().begin(), ids.ids().end()), (std::vector<int32_t>{3, 2, 4, 1}));
  // vocab.json keeps the names and where the words came from; the hash tells the names apart.
  const Vocab r = Vocab::from_json(v.to_json(), "vocab.json");
  EXPECT_EQ(r.unk(), 2);
  EXPECT_EQ(r.eos(), 1);
  EXPECT_EQ(r.source_file(), p);
  EXPECT_EQ(r.hash(), v.hash());
  const Vocab other(TokenMode::Word, words_of(v), std::vector<int64_t>(5, 0), "<S>", "</S>");
  EXPECT_NE(other.hash(), v.hash());
  const std::string dup = write("dup.txt", "<S> 0\n</S> 30\n<UNK> 0\nthe 41\nthe 3\n");
  EXPECT_NE(user_error([&] {
              load_vocab_file(dup, VocabFormat::Auto, "<UNK>", "</S>");
            }).find(dup + ":5: the word 'the' is listed twice (lines 4 and 5)"),
            std::string::npos);
}

TEST_F(VocabFile, MissingSpecialsAndBadFilesFailNamingTheFile) {
  const std::string p = write("1b.txt", "<S> 0\n</S> 30\n<UNK> 0\nthe 41\n");
  const std::string e = user_error([&] { load_vocab_file(p, VocabFormat::Auto, "<unk>", "<eos>"); });
  EXPECT_NE(e.find(p + " has no unknown word '<unk>' (name the file's with --unk-token"), std::string::npos) << e;
  const std::string e2 = user_error([&] { load_vocab_file(p, VocabFormat::Auto, "<UNK>", "<eos>"); });
  EXPECT_NE(e2.find(p + " has no line-end word '<eos>'"), std::string::npos) << e2;
  const std::string three = write("three.txt", "a b c\n");
  EXPECT_NE(user_error([&] { detect_vocab_format(three); }).find("name it with --vocab-format"), std::string::npos);
  const std::string two = write("two.txt", "<unk>\n<eos>\na b\n");
  EXPECT_NE(user_error([&] {
              load_vocab_file(two, VocabFormat::Auto, "<unk>", "<eos>");
            }).find(two + ":3: expected 'one word' per line (--vocab-format lines)"),
            std::string::npos);
  EXPECT_NE(user_error([&] {
              load_vocab_file(write("empty.txt", "\n\n"), VocabFormat::Lines, "<unk>", "<eos>");
            }).find("no words"),
            std::string::npos);
  EXPECT_NE(user_error([&] {
              load_vocab_file(dir_ + "/none.txt", VocabFormat::Auto, "<unk>", "<eos>");
            }).find(dir_ + "/none.txt"),
            std::string::npos);
  const std::string latin1 = write("latin1.txt", "<unk>\n<eos>\ncaf\xE9\n");
  EXPECT_NE(user_error([&] {
              load_vocab_file(latin1, VocabFormat::Lines, "<unk>", "<eos>");
            }).find(latin1 + ":3: the word is not valid UTF-8"),
            std::string::npos);
}

TEST_F(VocabFile, ConfigRefusesCountingOptionsBesideAVocabularyFile) {
  Config c;
  c.vocab_file = "v.txt";
  c.vocab_size = 10;
  EXPECT_NE(user_error([&] { c.validate(); }).find("--vocab-size: not with --vocab-file"), std::string::npos);
  c.vocab_size = 0;
  c.tokens = TokenMode::Char;
  EXPECT_NE(user_error([&] { c.validate(); }).find("--vocab-file: needs --tokens word"), std::string::npos);
  c.tokens = TokenMode::Word;
  c.unk_token = c.eos_token = "<x>";
  EXPECT_NE(user_error([&] { c.validate(); }).find("must differ"), std::string::npos);
}

// A run with a Kaldi vocabulary: its ids, the file's name and format in vocab.json, and --resume trusting vocab.json
// even where the file has gone.
TEST_F(VocabFile, ATrainingRunUsesTheFileAndRecordsIt) {
  std::string text;
  for (int i = 0; i < 60; ++i) text += i % 3 ? "the cat sat\n" : "a dog ran far\n";
  Config c;
  c.train = write("train.txt", text);
  c.valid = write("valid.txt", "the dog sat\nan owl\n");
  c.test = write("test.txt", "a cat ran\n");
  c.vocab_file = write("words.txt", "<eps> 0\n<UNK> 1\nthe 2\ncat 3\nsat 4\n#0 5\n</s> 6\n");
  c.unk_token = "<UNK>";
  c.eos_token = "</s>";
  c.cache_dir = dir_ + "/cache";
  c.out = dir_ + "/run";
  c.hidden = c.embed = 8;
  c.batch = c.eval_batch = 2;
  c.bptt = 5;
  c.epochs = 1;
  c.threads = 1;
  const TrainResult r = run_training(c);
  EXPECT_TRUE(std::isfinite(r.valid_ppl));
  const Vocab v = Vocab::from_json(test_util::read_bytes(c.out + "/vocab.json"), "vocab.json");
  EXPECT_EQ(words_of(v), (std::vector<std::string>{"<UNK>", "the", "cat", "sat", "</s>"}));
  EXPECT_EQ(v.source_file(), c.vocab_file);
  EXPECT_NE(test_util::read_bytes(c.out + "/vocab.json").find("\"format\":\"kaldi\""), std::string::npos);
  std::filesystem::remove(c.vocab_file);
  Config more = c;
  more.resume = c.out;
  more.out.clear();
  more.epochs = 2;
  EXPECT_EQ(run_training(more).epochs, 2);
  // The run's corpus.json: a changed text is refused with one line naming it.
  write("train.txt", text + "the cat\n");
  more.epochs = 3;
  const std::string e = user_error([&] { run_training(more); });
  EXPECT_NE(e.find("--resume: the train text of " + c.out + " changed since the run began (" + c.train),
            std::string::npos)
      << e;
  EXPECT_EQ(e.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace manylm

namespace manylm {
namespace {

// Shards (data/corpus.h): a folder and a glob name the same files in order; the second load maps every cache;
// with a fixed vocabulary, changing one shard re-encodes that shard only; ids equal the single file's.
TEST_F(VocabFile, ShardsEncodeOnceAndAChangedShardAloneIsEncodedAgain) {
  std::filesystem::create_directories(dir_ + "/train");
  std::string whole;
  for (int s = 0; s < 4; ++s) {
    std::string t;
    for (int i = 0; i <= s; ++i) t += i % 2 ? "the cat sat\n" : "a dog ran far away\n";
    write("train/" + std::to_string(s) + ".txt", t);
    whole += t;
  }
  EXPECT_EQ(corpus_paths(dir_ + "/train", "--train"), corpus_paths(dir_ + "/train/*.txt", "--train"));
  EXPECT_NE(user_error([&] { corpus_paths(dir_ + "/none/*.txt", "--train"); }).find("--train: no file matches"),
            std::string::npos);
  const Vocab v =
      load_vocab_file(write("v.txt", "<unk>\n<eos>\nthe\ncat\na\ndog\n"), VocabFormat::Lines, "<unk>", "<eos>");
  const auto files = corpus_paths(dir_ + "/train", "--train");
  const std::string cache = dir_ + "/cache";
  const CorpusIds first = CorpusIds::load(files, v, cache);
  EXPECT_EQ(first.encoded(), 4u);
  const CorpusIds second = CorpusIds::load(files, v, cache);
  EXPECT_TRUE(second.from_cache());
  EXPECT_EQ(second.fingerprint(), first.fingerprint());
  std::vector<int32_t> cat;
  for (auto p : second.pieces()) cat.insert(cat.end(), p.begin(), p.end());
  const TokenIds one = TokenIds::load(write("whole.txt", whole), v, "");
  EXPECT_EQ(cat, std::vector<int32_t>(one.ids().begin(), one.ids().end()));
  write("train/2.txt", "the dog\n");
  const CorpusIds third = CorpusIds::load(files, v, cache);
  EXPECT_EQ(third.encoded(), 1u);
  EXPECT_FALSE(third.shard(2).from_cache());
  EXPECT_EQ(std::vector<int32_t>(third.shard(2).ids().begin(), third.shard(2).ids().end()),
            (std::vector<int32_t>{2, 5, 1}));
  EXPECT_NE(third.fingerprint(), first.fingerprint());
  // A counted vocabulary over the shards equals the one counted from the whole text.
  const Vocab counted = count_vocabulary(files, TokenMode::Word, 0, 1, cache);
  const Vocab again = count_vocabulary(files, TokenMode::Word, 0, 1, cache);
  EXPECT_EQ(counted.hash(), again.hash());
  write("train/2.txt", "a dog ran far away\nthe cat sat\na dog ran far away\n");  // as it was
  EXPECT_EQ(count_vocabulary(files, TokenMode::Word, 0, 1, "").hash(),
            build_vocab(dir_ + "/whole.txt", TokenMode::Word, 0, 1).hash());
}

}  // namespace
}  // namespace manylm
