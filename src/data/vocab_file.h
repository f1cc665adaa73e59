// vocab_file.h — a fixed external vocabulary (--vocab-file): one word per line (line order = id); Kaldi's
// words.txt ("word id" per line; <eps> and the #0-style disambiguation symbols skipped, ids strictly
// ascending); or the One Billion Word Benchmark's 1b_word_vocab.txt ("word count" per line, with <S>, </S>,
// <UNK>). Ids keep the file's order (skipped entries leave no gap); words outside it map to the unknown word.
// Not a counted vocabulary (vocab.h builds those).
#pragma once
#include <string>

#include "core/names.h"
#include "data/vocab.h"

namespace manylm {

enum class VocabFormat { Auto, Lines, Kaldi, Lm1b };
inline constexpr Named<VocabFormat> kVocabFormatNames[] = {{VocabFormat::Auto, "auto"},
                                                           {VocabFormat::Lines, "lines"},
                                                           {VocabFormat::Kaldi, "kaldi"},
                                                           {VocabFormat::Lm1b, "lm1b"}};
constexpr std::span<const Named<VocabFormat>> enum_names(VocabFormat) { return kVocabFormatNames; }

// auto: the first non-blank line decides. One field: lines. Two: kaldi if it is "<eps> ..." or the first two
// lines' numbers are 0 and 1 (ids), else lm1b (counts). UserError naming the file otherwise.
VocabFormat detect_vocab_format(const std::string& path);

// Reads the file (word mode). UserError naming the file and line for a malformed line, a word listed twice,
// Kaldi ids repeated or out of order, invalid UTF-8, or an unknown or line-end word missing from the file.
Vocab load_vocab_file(const std::string& path, VocabFormat format, const std::string& unk_word,
                      const std::string& eos_word);

}  // namespace manylm
