// watchdog.cc — see watchdog.h.
#include "mpi/watchdog.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <ifaddrs.h>
#include <linux/errqueue.h>
#include <mpi.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "core/error.h"

namespace manylm {

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

constexpr uint32_t kMagic = 0x4d4c4842;  // "MLHB"
enum Kind : uint32_t { kBeat = 0, kGoodbye = 1, kStop = 2 };

// One datagram: a heartbeat, a goodbye, or "stop" with the reason the sender stopped the job.
struct Beat {
  uint32_t magic = kMagic, kind = kBeat;
  uint64_t job = 0;
  int32_t rank = 0, waiting = 0;
  int64_t step = 0;
  char text[512] = {};
};
constexpr size_t kHeader = offsetof(Beat, text);

// The IPv4 address the other ranks reach this one at: an interface Open MPI's TCP transport was told to use
// (OMPI_MCA_btl_tcp_if_include, names only), else the first up, non-loopback interface that is not a local
// bridge (docker, libvirt), else the loopback (all ranks on this host).
in_addr_t heartbeat_address() {
  std::vector<std::string> wanted;
  if (const char* v = std::getenv("OMPI_MCA_btl_tcp_if_include")) {
    std::stringstream in(v);
    for (std::string name; std::getline(in, name, ',');)
      if (!name.empty() && name.find('/') == std::string::npos) wanted.push_back(name);
  }
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return htonl(INADDR_LOOPBACK);
  in_addr_t chosen = htonl(INADDR_LOOPBACK), fallback = chosen;
  bool found = false;
  for (ifaddrs* i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
      continue;
    const in_addr_t a = reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr;
    const std::string name = i->ifa_name;
    if (!wanted.empty()) {
      if (std::find(wanted.begin(), wanted.end(), name) != wanted.end()) chosen = a, found = true;
    } else if (name.rfind("docker", 0) == 0 || name.rfind("virbr", 0) == 0 || name.rfind("br-", 0) == 0) {
      fallback = a;
    } else {
      chosen = a, found = true;
    }
  }
  freeifaddrs(list);
  return found ? chosen : fallback;
}

}  // namespace

struct Watchdog::State {
  int rank = 0, size = 1;
  WatchdogOptions o;
  uint64_t job = 0;
  int fd = -1;
  double started = 0;
  std::vector<sockaddr_in> peers;  // by rank
  std::vector<double> heard;       // when a datagram of the rank last arrived (0: never)
  std::vector<double> refused;     // when its host first said "port unreachable" (0: never)
  std::vector<int64_t> step;       // the rank's step and whether it waits, from its last heartbeat
  std::vector<uint8_t> waiting, left;
  std::atomic<int64_t> my_step{0};
  std::atomic<double> armed_since{0};  // 0: not armed
  std::atomic<const char*> armed_for{""};
  std::atomic<bool> watching{false}, stop{false};
  std::mutex mu;
  std::string note;

  void send_all(Kind kind, const std::string& text);
  void receive();
  void read_errors();
  void check();
  [[noreturn]] void fire(const std::string& reason, bool tell_peers);
  std::string timeout_reason(double t) const;
  void loop();
};

void Watchdog::State::send_all(Kind kind, const std::string& text) {
  Beat b;
  b.kind = kind;
  b.job = job;
  b.rank = rank;
  b.waiting = armed_since.load() > 0;
  b.step = my_step.load();
  const size_t n = std::min(text.size(), sizeof b.text - 1);
  std::memcpy(b.text, text.data(), n);
  for (int r = 0; r < size; ++r)
    if (r != rank)
      sendto(fd, &b, kHeader + n + 1, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&peers[r]), sizeof peers[r]);
}

void Watchdog::State::receive() {
  Beat b;
  for (;;) {
    const ssize_t n = recv(fd, &b, sizeof b, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN (drained), or an error the error queue reports
    }
    if (static_cast<size_t>(n) < kHeader + 1 || b.magic != kMagic || b.job != job || b.rank < 0 || b.rank >= size ||
        b.rank == rank)
      continue;
    b.text[std::min(static_cast<size_t>(n) - kHeader, sizeof b.text - 1)] = '\0';
    const size_t k = static_cast<size_t>(b.rank);
    heard[k] = now();
    step[k] = b.step;
    waiting[k] = static_cast<uint8_t>(b.waiting);
    if (b.kind == kGoodbye) left[k] = 1;
    if (b.kind == kStop) fire(fmt::format("rank {} stopped the job: {}", b.rank, b.text), false);
  }
}

// "Port unreachable" answers to our heartbeats: the rank at that address has no socket any more.
void Watchdog::State::read_errors() {
  char data[64], control[512];
  for (;;) {
    sockaddr_in to{};
    iovec io{data, sizeof data};
    msghdr m{};
    m.msg_name = &to;
    m.msg_namelen = sizeof to;
    m.msg_iov = &io;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    if (recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return;
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != SOL_IP || c->cmsg_type != IP_RECVERR) continue;
      const auto* e = reinterpret_cast<const sock_extended_err*>(CMSG_DATA(c));
      if (e->ee_errno != ECONNREFUSED) continue;
      for (int r = 0; r < size; ++r)
        if (r != rank && peers[r].sin_addr.s_addr == to.sin_addr.s_addr && peers[r].sin_port == to.sin_port &&
            refused[r] == 0)
          refused[r] = now();
    }
  }
}

void Watchdog::State::check() {
  const double t = now();
  std::vector<int> gone, silent;
  double longest = 0;
  for (int r = 0; r < size; ++r) {
    if (r == rank || left[r] || heard[r] == 0) continue;
    // refused, heard from before, no goodbye since, and a heartbeat period to be sure
    if (refused[r] > 0 && t - refused[r] >= o.period) gone.push_back(r);
    if (t - heard[r] > o.timeout) silent.push_back(r), longest = std::max(longest, t - heard[r]);
  }
  if (!gone.empty())
    fire(fmt::format("{} ended without leaving the job (killed?) during step {}", rank_list(gone), my_step.load() + 1),
         true);
  // A peer silent for the whole timeout is stuck or cut off wherever this rank is (a checkpoint's barrier too):
  // a rank that computes, writes or tunes still sends its heartbeats.
  if (!silent.empty())
    fire(fmt::format(
             "{} stopped answering: no heartbeat for {:.1f} s (--comm-timeout {:g}) while this rank was in "
             "step {}{}",
             rank_list(silent), longest, o.timeout, my_step.load() + 1,
             static_cast<int>(silent.size()) == size - 1 && size > 2 ? "; this rank may be the one cut off" : ""),
         true);
  const double a = armed_since.load();
  if (watching && a > 0 && t - a > o.timeout) fire(timeout_reason(t), true);
}

std::string Watchdog::State::timeout_reason(double t) const {
  const double silent_after = std::max(2.0, 8 * o.period);
  std::vector<int> silent, never, behind;
  double longest = 0;
  for (int r = 0; r < size; ++r) {
    if (r == rank || left[r]) continue;
    if (heard[r] == 0) {
      never.push_back(r);
    } else if (t - heard[r] > silent_after) {
      silent.push_back(r);
      longest = std::max(longest, t - heard[r]);
    } else if (step[r] < my_step.load() || (step[r] == my_step.load() && !waiting[r])) {
      behind.push_back(r);
    }
  }
  std::string why;
  if (!silent.empty())
    why = fmt::format(
        "{} stopped answering (no heartbeat for {:.1f} s){}", rank_list(silent), longest,
        static_cast<int>(silent.size()) == size - 1 && size > 2 ? "; this rank may be the one cut off" : "");
  else if (!never.empty())
    why = fmt::format("no heartbeat ever came from {} (UDP blocked between the nodes?)", rank_list(never));
  else if (!behind.empty())
    why = fmt::format("every rank answers, but {} did not reach this step's collectives", rank_list(behind));
  else
    why = "every rank answers and waits too: the network is too slow or losing packets for this timeout";
  return fmt::format("waited {:.1f} s in {} at step {} (--comm-timeout {:g}): {}", t - armed_since.load(),
                     armed_for.load(), my_step.load() + 1, o.timeout, why);
}

void Watchdog::State::fire(const std::string& reason, bool tell_peers) {
  std::string n;
  {
    std::lock_guard lk(mu);
    n = note;
  }
  if (tell_peers) send_all(kStop, fmt::format("{}", reason));
  const std::string line = fmt::format("manylm: rank {} of {}: {}{}{}\n", rank, size, reason, n.empty() ? "" : "; ", n);
  [[maybe_unused]] ssize_t w = ::write(2, line.data(), line.size());
  ::_exit(kCommFailureExit);
}

void Watchdog::State::loop() {
  double next = 0;
  while (!stop.load()) {
    if (now() >= next) {
      send_all(kBeat, "");
      next = now() + o.period;
    }
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, static_cast<int>(std::clamp((next - now()) * 1e3, 1.0, 50.0)));
    read_errors();
    receive();
    check();
  }
}

Watchdog::Watchdog(const Comm& comm, const WatchdogOptions& o) {
  if (!comm.distributed() || !(o.timeout > 0)) return;
  auto s = std::make_unique<State>();
  s->rank = comm.rank();
  s->size = comm.size();
  s->o = o;
  s->o.period = std::clamp(o.period, 0.01, std::max(0.01, o.timeout / 4));
  s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in me{};
  me.sin_family = AF_INET;
  me.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t len = sizeof me;
  const int one = 1;
  const bool ok = s->fd >= 0 && bind(s->fd, reinterpret_cast<sockaddr*>(&me), sizeof me) == 0 &&
                  getsockname(s->fd, reinterpret_cast<sockaddr*>(&me), &len) == 0 &&
                  setsockopt(s->fd, SOL_IP, IP_RECVERR, &one, sizeof one) == 0;
  // Every rank takes part in the exchange, even one whose socket failed (port 0: nobody sends to it).
  uint32_t mine[2] = {heartbeat_address(), ok ? static_cast<uint32_t>(me.sin_port) : 0u};
  std::vector<uint32_t> all(2 * static_cast<size_t>(s->size));
  MPI_Allgather(mine, 2, MPI_UINT32_T, all.data(), 2, MPI_UINT32_T, MPI_COMM_WORLD);
  uint64_t job = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                 (static_cast<uint64_t>(getpid()) << 32);
  MPI_Bcast(&job, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  if (!ok) {  // no heartbeat here: the job runs without a watchdog on this rank
    if (s->fd >= 0) close(s->fd);
    return;
  }
  s->job = job;
  s->peers.resize(static_cast<size_t>(s->size));
  for (int r = 0; r < s->size; ++r) {
    s->peers[r].sin_family = AF_INET;
    s->peers[r].sin_addr.s_addr = all[2 * static_cast<size_t>(r)];
    s->peers[r].sin_port = static_cast<in_port_t>(all[2 * static_cast<size_t>(r) + 1]);
  }
  s->heard.assign(static_cast<size_t>(s->size), 0);
  s->refused.assign(static_cast<size_t>(s->size), 0);
  s->step.assign(static_cast<size_t>(s->size), 0);
  s->waiting.assign(static_cast<size_t>(s->size), 0);
  s->left.assign(static_cast<size_t>(s->size), 0);
  for (int r = 0; r < s->size; ++r)
    if (all[2 * static_cast<size_t>(r) + 1] == 0) s->left[r] = 1;  // a rank without a heartbeat
  s->started = now();
  state_ = std::move(s);
  thread_ = std::thread([st = state_.get()] { st->loop(); });
}

Watchdog::~Watchdog() {
  if (!state_) return;
  state_->stop = true;
  thread_.join();
  for (int i = 0; i < 2; ++i) state_->send_all(kGoodbye, "");
  close(state_->fd);
}

void Watchdog::set_note(std::string note) {
  if (!state_) return;
  std::lock_guard lk(state_->mu);
  state_->note = std::move(note);
}

void Watchdog::set_step(int64_t step) {
  if (state_) state_->my_step = step;
}

void Watchdog::start_watching() {
  if (state_) state_->watching = true;
}

Watchdog::Armed Watchdog::arm(Watchdog* w, const char* what) {
  if (!w || !w->state_ || !w->state_->watching) return Armed(nullptr);
  w->state_->armed_for = what;
  w->state_->armed_since = now();
  return Armed(w);
}

Watchdog::Armed::~Armed() {
  if (w_) w_->state_->armed_since = 0;
}

std::string rank_list(const std::vector<int>& ranks) {
  if (ranks.size() == 1) return fmt::format("rank {}", ranks[0]);
  std::string s = "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i)
    s += fmt::format("{}{}", i == 0 ? "" : i + 1 == ranks.size() ? " and " : ", ", ranks[i]);
  return s;
}

}  // namespace manylm
