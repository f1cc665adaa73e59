// corpus_stats.cc — see corpus_stats.h.
#include "data/corpus_stats.h"

#include <sys/stat.h>

#include <algorithm>
#include <exception>
#include <filesystem>

#include "core/error.h"
#include "core/parallel.h"
#include "data/text_reader.h"

namespace manylm {

std::vector<std::string> corpus_files(const std::string& path, std::vector<std::string>* skipped) {
  namespace fs = std::filesystem;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) fail("{}: no such file or directory", path);
  if (!S_ISDIR(st.st_mode)) return {path};
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (it->is_directory(ec))
      skipped->push_back(it->path().string());
    else if (it->is_regular_file(ec))
      files.push_back(it->path().string());
  }
  if (ec) fail("{}: cannot list the directory: {}", path, ec.message());
  if (files.empty()) fail("{}: a directory without files", path);
  std::sort(files.begin(), files.end());
  std::sort(skipped->begin(), skipped->end());
  return files;
}

CorpusCounts count_corpus(const std::vector<std::string>& files) {
  const int threads = std::max(1, num_threads());
  std::vector<CorpusCounts> part(static_cast<size_t>(threads));
  std::vector<std::exception_ptr> errors(files.size());
  parallel_for(static_cast<int64_t>(files.size()), 2, [&](int64_t b, int64_t e) {
    CorpusCounts& c = part[static_cast<size_t>(omp_get_thread_num()) % part.size()];
    for (int64_t i = b; i < e; ++i) try {
        const std::string& f = files[static_cast<size_t>(i)];
        c.words += read_tokens(
            f, TokenMode::Word, [&](std::string_view w) { ++c.counts[std::string(w)]; }, [&] { ++c.lines; });
        std::error_code ec;
        const auto size = std::filesystem::file_size(f, ec);
        c.bytes += ec ? 0 : static_cast<int64_t>(size);
        ++c.files;
      } catch (...) {
        errors[static_cast<size_t>(i)] = std::current_exception();
      }
  });
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  CorpusCounts all = std::move(part[0]);
  for (size_t t = 1; t < part.size(); ++t) {
    all.files += part[t].files;
    all.bytes += part[t].bytes;
    all.lines += part[t].lines;
    all.words += part[t].words;
    for (const auto& [w, n] : part[t].counts) all.counts[w] += n;
  }
  return all;
}

}  // namespace manylm
