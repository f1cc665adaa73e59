// comm.cc — see comm.h.
#include "mpi/comm.h"

#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/io.h"

namespace manylm {

bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

MpiSession::MpiSession(int* argc, char*** argv) {
  if (!launched_by_mpirun()) return;
  int provided = 0;
  // SERIALIZED: the reducer's progress thread and the main thread never call MPI at the same time.
  MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    fail("MPI: the library gives thread level {} but manylm needs MPI_THREAD_SERIALIZED", provided);
  }
  started_ = true;
}

MpiSession::~MpiSession() {
  int finalized = 0;
  if (started_ && (MPI_Finalized(&finalized), !finalized)) MPI_Finalize();
}

void MpiSession::abort_job(int code) {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin && Comm::world().distributed()) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

Comm Comm::world() {
  Comm c;
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) {
    MPI_Comm_rank(MPI_COMM_WORLD, &c.rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &c.size_);
  }
  return c;
}

void Comm::barrier() const {
  if (distributed()) MPI_Barrier(MPI_COMM_WORLD);
}

void Comm::sum(std::span<double> v) const {
  if (distributed())
    MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

void Comm::sum(std::span<int64_t> v) const {
  if (distributed())
    MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
}

double Comm::max(double v) const {
  if (distributed()) MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return v;
}

std::string Comm::broadcast(const std::string& s) const {
  if (!distributed()) return s;
  int64_t n = static_cast<int64_t>(s.size());
  MPI_Bcast(&n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  std::string out = root() ? s : std::string(static_cast<size_t>(n), '\0');
  MPI_Bcast(out.data(), static_cast<int>(n), MPI_CHAR, 0, MPI_COMM_WORLD);
  return out;
}

void Comm::broadcast(std::span<float> v) const {
  if (!distributed()) return;
  constexpr size_t kChunk = size_t{1} << 30;  // MPI counts are int
  for (size_t at = 0; at < v.size(); at += kChunk)
    MPI_Bcast(v.data() + at, static_cast<int>(std::min(kChunk, v.size() - at)), MPI_FLOAT, 0, MPI_COMM_WORLD);
}

void Comm::gather_rows(const float* mine, int64_t r0, int64_t r1, int64_t cols, float* full) const {
  if (!distributed()) {
    std::memcpy(full + r0 * cols, mine, static_cast<size_t>((r1 - r0) * cols) * sizeof(float));
    return;
  }
  const int n = static_cast<int>((r1 - r0) * cols), at = static_cast<int>(r0 * cols);
  std::vector<int> counts(static_cast<size_t>(size_)), displs(static_cast<size_t>(size_));
  MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Gather(&at, 1, MPI_INT, displs.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Gatherv(mine, n, MPI_FLOAT, full, counts.data(), displs.data(), MPI_FLOAT, 0, MPI_COMM_WORLD);
}

void Comm::check_same(std::span<const float> v, const std::string& what) const {
  if (!distributed()) return;
  const uint64_t h = fnv1a(std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
  std::vector<uint64_t> all(static_cast<size_t>(size_));
  MPI_Allgather(&h, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
  for (int r = 1; r < size_; ++r)
    if (all[static_cast<size_t>(r)] != all[0])
      throw std::runtime_error(fmt::format(
          "MPI: {} differ between rank 0 and rank {}: the ranks have diverged (a bug; please report it)", what, r));
}

}  // namespace manylm
