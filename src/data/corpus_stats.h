// corpus_stats.h — what `manylm corpus stats` reports about text files: the files a path names (a file, or a
// directory's regular files in sorted order), and their bytes, lines, words and word counts, read in parallel
// over files in word mode (text_reader.h's rules: one <eos> per line). Not a vocabulary (vocab.h builds one
// from the counts) and not the generator (synth_corpus.h).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>

#include <vector>
#include "data/vocab.h"

namespace manylm {

// `path` itself if it is a file; a directory's regular files (not those whose name starts with '.') in sorted
// order, its subdirectories added to `skipped`. UserError naming the path if it is missing or a directory
// without files.
std::vector<std::string> corpus_files(const std::string& path, std::vector<std::string>* skipped);

struct CorpusCounts {
  int64_t files = 0, bytes = 0, lines = 0, words = 0;
  WordMap<int64_t> counts;                          // word → occurrences
  int64_t tokens() const { return words + lines; }  // as `train` counts them: one <eos> per line
};

// Reads every file (UserError naming the first bad one), on the team's threads.
CorpusCounts count_corpus(const std::vector<std::string>& files);

}  // namespace manylm
