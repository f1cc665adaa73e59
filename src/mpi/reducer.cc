// reducer.cc — see reducer.h.
#include "mpi/reducer.h"

#include <mpi.h>
#include <omp.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "core/error.h"
#include "core/parallel.h"

namespace manylm {

namespace {
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
enum class Path { Allreduce, Dense, Sparse };
}  // namespace

// MPI requires every rank to start collectives on a communicator in the same order. Buckets are
// launched in bucket order, but a bucket's second stage starts when its first completes, which happens
// at different moments on different ranks; so each stage has its own communicator, and a bucket enters
// stage 2 only after the bucket before it has: on each communicator the order is the bucket order.
struct GradReducer::Channels {
  MPI_Comm first = MPI_COMM_NULL, second = MPI_COMM_NULL;
};

struct GradReducer::Bucket {
  size_t begin = 0, end = 0;  // float range of the gradient block
  Path path = Path::Allreduce;
  int stage = 0;  // 0 not launched, 1 and 2: collective in flight, 3 done
  MPI_Request req = MPI_REQUEST_NULL;
  std::vector<size_t> off, len;  // dense: chunk j (owned by rank j) is [begin + off[j], + len[j])
  std::vector<uint8_t> send, recv, gsend, gather;
  std::vector<int> scounts, sdispls, rcounts, rdispls, gcounts, gdispls;
  std::vector<float> acc;  // dense: (len[rank]) the owner's fp32 sum;
                           // all-reduce: (end − begin) the result

  std::vector<uint32_t> msg, all;  // threshold: mine, everyone's
  std::vector<int> words, wdispls;
  int my_words = 0;
};

GradReducer::GradReducer(Comm comm, std::span<float> grads, const ReduceOptions& o)
    : comm_(comm), grads_(grads), o_(o) {
  if (!comm_.distributed()) return;
  const int N = comm_.size(), me = comm_.rank();
  ch_ = std::make_unique<Channels>();
  MPI_Comm_dup(MPI_COMM_WORLD, &ch_->first);
  MPI_Comm_dup(MPI_COMM_WORLD, &ch_->second);
  const Path path = o.codec == Compress::Threshold                    ? Path::Sparse
                    : (o.codec == Compress::None && !o.deterministic) ? Path::Allreduce
                                                                      : Path::Dense;
  // A bucket holds at least one codec block per rank, or some ranks would own no chunk of it.
  // Threshold: the gathered messages (up to S + 2 words from each rank) must count below 2^31 (MPI's int).
  int64_t floats = std::max<int64_t>(o.bucket_floats, kBlock * N);
  if (path == Path::Sparse) floats = std::min<int64_t>(floats, (int64_t{INT32_MAX} - 2 * N) / N);
  const size_t n = grads.size(), S = static_cast<size_t>(floats);
  for (size_t end = n; end > 0;) {
    auto b = std::make_unique<Bucket>();
    b->end = end;
    b->begin = end > S ? end - S : 0;
    end = b->begin;
    b->path = path;
    if (path == Path::Dense) {
      const int64_t L = static_cast<int64_t>(b->end - b->begin), blocks = (L + kBlock - 1) / kBlock;
      for (int j = 0; j < N; ++j) {
        auto [b0, b1] = static_range(blocks, j, N);
        const int64_t o0 = std::min(L, b0 * kBlock), o1 = std::min(L, b1 * kBlock);
        b->off.push_back(static_cast<size_t>(o0));
        b->len.push_back(static_cast<size_t>(o1 - o0));
      }
      const int mine = static_cast<int>(dense_bytes(o.codec, static_cast<int64_t>(b->len[me])));
      int at = 0, rat = 0;
      for (int j = 0; j < N; ++j) {
        const int bytes = static_cast<int>(dense_bytes(o.codec, static_cast<int64_t>(b->len[j])));
        b->scounts.push_back(bytes);
        b->sdispls.push_back(at);
        b->gcounts.push_back(bytes);
        b->gdispls.push_back(at);
        at += bytes;
        b->rcounts.push_back(mine);
        b->rdispls.push_back(rat);
        rat += mine;
      }
      b->send.resize(static_cast<size_t>(at));
      b->gather.resize(static_cast<size_t>(at));
      b->recv.resize(static_cast<size_t>(rat));
      b->gsend.resize(static_cast<size_t>(mine));
      b->acc.resize(b->len[me]);
    } else if (path == Path::Allreduce) {
      b->acc.resize(b->end - b->begin);  // not in place: Open MPI's libnbc falls back to a binomial tree then
    } else if (path == Path::Sparse) {
      b->words.resize(static_cast<size_t>(N));
      b->wdispls.resize(static_cast<size_t>(N));
    }
    buckets_.push_back(std::move(b));
  }
  if (o.codec != Compress::None) residual_.assign(n, 0.0f);
  if (path == Path::Dense && o.codec != Compress::None) owner_residual_.assign(n, 0.0f);
  if (o.progress_thread) thread_ = std::thread([this] { worker(); });
}

GradReducer::~GradReducer() {
  if (thread_.joinable()) {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  if (ch_) {
    MPI_Comm_free(&ch_->first);
    MPI_Comm_free(&ch_->second);
  }
}

std::vector<std::pair<std::string, std::span<float>>> GradReducer::feedback_state() {
  std::vector<std::pair<std::string, std::span<float>>> out;
  if (!residual_.empty()) out.emplace_back("residual", residual_);
  if (!owner_residual_.empty()) out.emplace_back("owner_residual", owner_residual_);
  return out;
}

void GradReducer::launch(Bucket& b) {
  const int N = comm_.size(), me = comm_.rank();
  float* g = grads_.data() + b.begin;
  const int64_t L = static_cast<int64_t>(b.end - b.begin);
  float* res = residual_.empty() ? nullptr : residual_.data() + b.begin;
  stats_.raw_bytes += 4.0 * static_cast<double>(L);
  switch (b.path) {
    case Path::Allreduce:
      MPI_Iallreduce(g, b.acc.data(), static_cast<int>(L), MPI_FLOAT, MPI_SUM, ch_->first, &b.req);
      stats_.payload_bytes += 4.0 * static_cast<double>(L);
      stats_.wire_bytes += 2.0 * (N - 1) / N * 4.0 * static_cast<double>(L);
      break;
    case Path::Dense:
      for (int j = 0; j < N; ++j) {
        dense_encode(o_.codec, g + b.off[j], res ? res + b.off[j] : nullptr, static_cast<int64_t>(b.len[j]),
                     b.send.data() + b.sdispls[j]);
        stats_.payload_bytes += b.scounts[j];
        if (j != me) stats_.wire_bytes += b.scounts[j];
      }
      MPI_Ialltoallv(b.send.data(), b.scounts.data(), b.sdispls.data(), MPI_BYTE, b.recv.data(), b.rcounts.data(),
                     b.rdispls.data(), MPI_BYTE, ch_->first, &b.req);
      break;
    case Path::Sparse:
      b.msg.clear();
      threshold_encode(g, res, L, o_.tau, o_.density, b.msg);
      b.my_words = static_cast<int>(b.msg.size());
      stats_.payload_bytes += 4.0 * b.my_words;
      MPI_Iallgather(&b.my_words, 1, MPI_INT, b.words.data(), 1, MPI_INT, ch_->first, &b.req);
      break;
  }
  b.stage = 1;
}

bool GradReducer::advance(Bucket& b, bool may_start_second) {
  if (b.stage == 1 && b.path != Path::Allreduce && !may_start_second) return false;
  int flag = 0;
  MPI_Test(&b.req, &flag, MPI_STATUS_IGNORE);
  if (!flag) return false;
  const int N = comm_.size(), me = comm_.rank();
  float* g = grads_.data() + b.begin;
  const int64_t L = static_cast<int64_t>(b.end - b.begin);
  if (b.path == Path::Allreduce) {
    std::memcpy(g, b.acc.data(), static_cast<size_t>(L) * sizeof(float));
    b.stage = 3;
  } else if (b.path == Path::Dense && b.stage == 1) {  // the owner sums its chunk in rank order
    const int64_t n = static_cast<int64_t>(b.len[me]);
    std::fill(b.acc.begin(), b.acc.end(), 0.0f);
    for (int j = 0; j < N; ++j) dense_decode_add(o_.codec, b.recv.data() + b.rdispls[j], n, b.acc.data());
    float* ores = owner_residual_.empty() ? nullptr : owner_residual_.data() + b.begin + b.off[me];
    dense_encode(o_.codec, b.acc.data(), ores, n, b.gsend.data());
    double total = 0;
    for (int j = 0; j < N; ++j) total += b.gcounts[j];
    stats_.wire_bytes += (N - 1.0) / N * total;
    MPI_Iallgatherv(b.gsend.data(), b.gcounts[me], MPI_BYTE, b.gather.data(), b.gcounts.data(), b.gdispls.data(),
                    MPI_BYTE, ch_->second, &b.req);
    b.stage = 2;
  } else if (b.path == Path::Dense) {  // every rank decodes the same bytes
    for (int j = 0; j < N; ++j)
      dense_decode(o_.codec, b.gather.data() + b.gdispls[j], static_cast<int64_t>(b.len[j]), g + b.off[j]);
    b.stage = 3;
  } else if (b.stage == 1) {  // sparse: counts known, gather the messages
    int64_t at = 0;           // below 2^31 by the bucket size
    for (int j = 0; j < N; ++j) b.wdispls[j] = static_cast<int>(at), at += b.words[j];
    b.all.resize(static_cast<size_t>(at));
    stats_.wire_bytes += 4.0 * (N - 1.0) / N * at + 4.0 * (N - 1);
    MPI_Iallgatherv(b.msg.data(), b.my_words, MPI_UINT32_T, b.all.data(), b.words.data(), b.wdispls.data(),
                    MPI_UINT32_T, ch_->second, &b.req);
    b.stage = 2;
  } else {  // sparse: Σ over ranks of ±τ, in rank order
    std::fill(g, g + L, 0.0f);
    for (int j = 0; j < N; ++j) {
      const uint32_t* m = b.all.data() + b.wdispls[j];
      if (b.words[j] < 2 || int64_t{m[1]} + 2 != b.words[j])  // the message's own count must fit what arrived
        throw std::runtime_error(fmt::format("gradient all-reduce: rank {}'s threshold message is malformed", j));
      threshold_decode_add(m, L, g);
    }
    b.stage = 3;
  }
  return true;
}

bool GradReducer::poll(size_t upto) {
  bool moved = false;
  while (launched_ < upto) {
    launch(*buckets_[launched_++]);
    moved = true;
  }
  for (size_t k = completed_; k < launched_; ++k) {
    Bucket& b = *buckets_[k];
    if (b.stage < 3 && advance(b, k == 0 || buckets_[k - 1]->stage >= 2)) moved = true;
  }
  while (completed_ < launched_ && buckets_[completed_]->stage == 3) ++completed_;
  return moved;
}

void GradReducer::drive(size_t upto) {
  while (completed_ < upto)
    if (!poll(upto)) std::this_thread::sleep_for(std::chrono::microseconds(20));
}

void GradReducer::worker() {
  omp_set_num_threads(1);  // codecs called from here must not start a second OpenMP team
  unpin_current_thread();  // not on compute thread 0's CPU: wherever the OS finds room
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return stop_ || released_ > done_; });
    if (stop_) return;
    size_t upto = released_;
    lk.unlock();
    try {
      for (;;) {
        const bool moved = poll(upto);
        if (completed_ == upto) {
          lk.lock();
          done_ = completed_;
          if (released_ == upto) break;  // keep the lock; wait for the next release
          upto = released_;
          lk.unlock();
          continue;
        }
        if (!moved) {
          std::this_thread::sleep_for(std::chrono::microseconds(20));
          std::lock_guard g(mu_);
          upto = released_;
        }
      }
    } catch (...) {  // hand it to the trainer's thread, which ends the job with its message
      if (!lk.owns_lock()) lk.lock();
      error_ = std::current_exception();
      done_ = buckets_.size();
      stop_ = true;
    }
    cv_.notify_all();
  }
}

void GradReducer::ready(size_t from) {
  if (!comm_.distributed()) return;
  size_t k = 0;
  while (k < buckets_.size() && buckets_[k]->begin >= from) ++k;
  if (!step_open_) {
    step_open_ = true;
    step_start_ = now_seconds();
  }
  if (o_.progress_thread) {
    {
      std::lock_guard lk(mu_);
      if (k <= released_) return;
      released_ = k;
    }
    cv_.notify_all();
  } else {
    poll(k);
  }
}

void GradReducer::finish() {
  if (!comm_.distributed()) return;
  const Watchdog::Armed armed = Watchdog::arm(watchdog_, "the gradient reduction");
  const double t0 = now_seconds();
  ready(0);
  const size_t all = buckets_.size();
  if (o_.progress_thread) {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return done_ == all; });
    if (error_) std::rethrow_exception(error_);
    released_ = done_ = 0;
  } else {
    drive(all);
  }
  for (auto& b : buckets_) b->stage = 0;
  launched_ = completed_ = 0;
  const double t1 = now_seconds();
  stats_.wait_seconds += t1 - t0;
  stats_.comm_seconds += t1 - step_start_;
  stats_.steps++;
  step_open_ = false;
}

namespace {

// The ascending, distinct union of the ranks' ascending id lists (concatenated in `all`).
std::vector<int32_t> union_of(std::vector<int32_t> all) {
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

std::vector<int> displacements(const std::vector<int>& counts) {
  std::vector<int> d(counts.size(), 0);
  for (size_t j = 1; j < counts.size(); ++j) d[j] = d[j - 1] + counts[j - 1];
  return d;
}

// out (U, w) += rows of g, each at its id's position in the union `ids`.
void add_rows_at(const RowGrad& g, const std::vector<int32_t>& ids, float* out) {
  const int64_t w = g.width;
  for (int64_t k = 0; k < g.rows(); ++k) {
    const int64_t u = std::lower_bound(ids.begin(), ids.end(), g.ids[static_cast<size_t>(k)]) - ids.begin();
    const float* src = g.row(k);
    float* dst = out + u * w;
    for (int64_t c = 0; c < w; ++c) dst[c] += src[c];
  }
}

}  // namespace

void GradReducer::reduce_rows(RowGrad& g, std::span<uint8_t> touched) {
  if (!comm_.distributed()) return;
  const int N = comm_.size();
  const Watchdog::Armed armed = Watchdog::arm(watchdog_, "the embedding rows' reduction");
  const double t0 = now_seconds();
  MPI_Allreduce(MPI_IN_PLACE, touched.data(), static_cast<int>(touched.size()), MPI_UNSIGNED_CHAR, MPI_MAX,
                MPI_COMM_WORLD);
  int mine = static_cast<int>(g.rows());
  std::vector<int> counts(static_cast<size_t>(N));
  MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
  const std::vector<int> displs = displacements(counts);
  std::vector<int32_t> all(static_cast<size_t>(displs.back() + counts.back()));
  MPI_Allgatherv(g.ids.data(), mine, MPI_INT32_T, all.data(), counts.data(), displs.data(), MPI_INT32_T,
                 MPI_COMM_WORLD);
  std::vector<int32_t> ids = union_of(all);
  const int64_t U = static_cast<int64_t>(ids.size()), w = g.width;
  std::vector<float> sum(static_cast<size_t>(U * w), 0.0f);
  double sent = 4.0 * (N - 1.0) / N * static_cast<double>(all.size());  // the ids, ring all-gather
  if (o_.deterministic && static_cast<double>(all.size()) * static_cast<double>(w) >= double(INT32_MAX))
    fail("--deterministic: the ranks' embedding rows ({} x {} floats) exceed MPI's int counts; leave it out",
         all.size(), w);
  if (o_.deterministic) {  // every rank's rows, added in rank order: the same bits whatever MPI does
    std::vector<int> vcounts(counts), vdispls(displs);
    for (int j = 0; j < N; ++j) vcounts[j] *= static_cast<int>(w), vdispls[j] *= static_cast<int>(w);
    std::vector<float> values(all.size() * static_cast<size_t>(w));
    MPI_Allgatherv(g.values.data(), mine * static_cast<int>(w), MPI_FLOAT, values.data(), vcounts.data(),
                   vdispls.data(), MPI_FLOAT, MPI_COMM_WORLD);
    RowGrad r;
    r.width = w;
    for (int j = 0; j < N; ++j) {
      r.ids.assign(all.begin() + displs[j], all.begin() + displs[j] + counts[j]);
      r.values.assign(values.begin() + int64_t{vdispls[j]}, values.begin() + int64_t{vdispls[j]} + vcounts[j]);
      add_rows_at(r, ids, sum.data());
    }
    sent += 4.0 * (N - 1.0) / N * static_cast<double>(values.size());
  } else {
    add_rows_at(g, ids, sum.data());
    for (int64_t b = 0; b < U * w; b += int64_t{1} << 30)  // MPI counts are int: pieces of 2^30 floats
      MPI_Allreduce(MPI_IN_PLACE, sum.data() + b, static_cast<int>(std::min<int64_t>(U * w - b, int64_t{1} << 30)),
                    MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    sent += 2.0 * (N - 1.0) / N * 4.0 * static_cast<double>(U * w);
  }
  g.ids = std::move(ids);
  g.values = std::move(sum);
  stats_.row_bytes += sent;
  stats_.row_count += static_cast<double>(U);
  const double t1 = now_seconds();
  stats_.comm_seconds += t1 - t0;
  stats_.wait_seconds += t1 - t0;
}

}  // namespace manylm
