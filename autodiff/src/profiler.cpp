#include "tapegrad/autodiff/profiler.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <ostream>
#include <stdexcept>

namespace tapegrad {

namespace detail {

struct ProfileCollector {
  std::vector<Profiler::Event> events;
  std::int64_t origin_ns = 0;  // profile_now() at construction
  std::int64_t last_ns = 0;    // end of the previous event (or mark), relative to origin_ns
  double pending_flops = 0;    // reported since the previous event
  bool in_backward = false;
  bool recording = true;
  int tid = 0;
};

std::int64_t profile_now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void profile_forward(ProfileCollector& c, const char* name) {
  if (c.in_backward) return;
  const std::int64_t now = profile_now() - c.origin_ns;
  c.events.push_back({name, c.last_ns, now - c.last_ns, false, c.pending_flops});
  c.pending_flops = 0;
  c.last_ns = now;
}

void profile_backward_begin(ProfileCollector& c) {
  c.in_backward = true;
}

void profile_backward(ProfileCollector& c, const char* name, std::int64_t start_ns) {
  const std::int64_t end = profile_now();
  c.events.push_back({name, start_ns - c.origin_ns, end - start_ns, true, c.pending_flops});
  c.pending_flops = 0;
}

void profile_add_flops(ProfileCollector& c, double flop) {
  c.pending_flops += flop;
}

void profile_backward_end(ProfileCollector& c) {
  c.in_backward = false;
  c.pending_flops = 0;
  c.last_ns = profile_now() - c.origin_ns;
}

}  // namespace detail

namespace {
int next_tid() {
  static std::atomic<int> counter{0};
  return ++counter;
}

// JSON string contents: op names are usually literals of [a-z0-9_], but escape anyway.
void write_json_string(std::ostream& out, const char* s) {
  out << '"';
  for (; *s != '\0'; ++s) {
    const unsigned char ch = static_cast<unsigned char>(*s);
    if (ch == '"' || ch == '\\') {
      out << '\\' << *s;
    } else if (ch < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      out << buf;
    } else {
      out << *s;
    }
  }
  out << '"';
}

// ns → µs with three decimals, as a JSON number.
void write_us(std::ostream& out, std::int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ns / 1000),
                static_cast<long long>(ns % 1000));
  out << buf;
}
}  // namespace

Profiler::Profiler() {
  if (detail::profile_collector != nullptr)
    throw std::logic_error(
        "Profiler: a Profiler is already recording on this thread (one per thread; stop() or "
        "destroy it first)");
  collector_ = new detail::ProfileCollector();
  collector_->events.reserve(4096);
  collector_->origin_ns = detail::profile_now();
  collector_->tid = next_tid();
  detail::profile_collector = collector_;
}

Profiler::~Profiler() {
  stop();
  delete collector_;
}

void Profiler::stop() {
  if (!collector_->recording) return;
  collector_->recording = false;
  if (detail::profile_collector == collector_) detail::profile_collector = nullptr;
}

bool Profiler::recording() const {
  return collector_->recording;
}

void Profiler::mark() {
  detail::ProfileCollector* c = detail::profile_collector;
  if (c == nullptr) return;
  c->last_ns = detail::profile_now() - c->origin_ns;
  c->pending_flops = 0;
}

const std::vector<Profiler::Event>& Profiler::events() const {
  return collector_->events;
}

std::vector<Profiler::OpStats> Profiler::stats() const {
  std::map<std::string, OpStats> by_name;
  for (const Event& e : collector_->events) {
    OpStats& s = by_name[e.op];
    if (e.backward) {
      ++s.backward_calls;
      s.backward_ms += static_cast<double>(e.duration_ns) * 1e-6;
      s.backward_flops += e.flops;
    } else {
      ++s.calls;
      s.forward_ms += static_cast<double>(e.duration_ns) * 1e-6;
      s.forward_flops += e.flops;
    }
  }
  std::vector<OpStats> out;
  out.reserve(by_name.size());
  for (auto& [name, s] : by_name) {
    s.op = name;
    out.push_back(std::move(s));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const OpStats& a, const OpStats& b) { return a.total_ms() > b.total_ms(); });
  return out;
}

double Profiler::total_ms() const {
  std::int64_t ns = 0;
  for (const Event& e : collector_->events) ns += e.duration_ns;
  return static_cast<double>(ns) * 1e-6;
}

double Profiler::total_flops() const {
  double f = 0;
  for (const Event& e : collector_->events) f += e.flops;
  return f;
}

void Profiler::print(std::ostream& out) const {
  const std::vector<OpStats> rows = stats();
  const double total = total_ms();
  std::size_t width = 2;
  for (const OpStats& s : rows) width = std::max(width, s.op.size());
  char buf[256];
  // GFLOP and GFLOP/s, or "-" for no FLOP.
  const auto flop_columns = [](double flop, double ms) {
    char cols[64];
    if (flop > 0)
      std::snprintf(cols, sizeof cols, " %10.4f %9.1f", flop * 1e-9,
                    ms > 0 ? flop / ms * 1e-6 : 0.0);
    else
      std::snprintf(cols, sizeof cols, " %10s %9s", "-", "-");
    return std::string(cols);
  };
  std::snprintf(buf, sizeof buf, "%-*s %10s %10s %12s %12s %12s %7s %10s %9s\n",
                static_cast<int>(width), "op", "calls", "bwd_calls", "forward_ms", "backward_ms",
                "total_ms", "%", "gflop", "gflop/s");
  out << buf;
  for (const OpStats& s : rows) {
    std::snprintf(buf, sizeof buf, "%-*s %10zu %10zu %12.3f %12.3f %12.3f %6.1f%%",
                  static_cast<int>(width), s.op.c_str(), s.calls, s.backward_calls, s.forward_ms,
                  s.backward_ms, s.total_ms(), total > 0 ? 100 * s.total_ms() / total : 0.0);
    out << buf << flop_columns(s.total_flops(), s.total_ms()) << "\n";
  }
  std::snprintf(buf, sizeof buf, "%-*s %10s %10s %12s %12s %12.3f %6.1f%%", static_cast<int>(width),
                "total", "", "", "", "", total, total > 0 ? 100.0 : 0.0);
  out << buf << flop_columns(total_flops(), total) << "\n";
}

void Profiler::write_chrome_trace(std::ostream& out) const {
  const long pid = static_cast<long>(::getpid());
  out << "{\"traceEvents\": [";
  bool first = true;
  for (const Event& e : collector_->events) {
    out << (first ? "\n" : ",\n") << "{\"name\": ";
    first = false;
    write_json_string(out, e.op);
    out << ", \"cat\": \"" << (e.backward ? "backward" : "forward")
        << "\", \"ph\": \"X\", \"ts\": ";
    write_us(out, e.start_ns);
    out << ", \"dur\": ";
    write_us(out, e.duration_ns);
    if (e.flops > 0) {
      char flop[48];
      std::snprintf(flop, sizeof flop, "%.0f", e.flops);
      out << ", \"args\": {\"flop\": " << flop << "}";
    }
    out << ", \"pid\": " << pid << ", \"tid\": " << collector_->tid << "}";
  }
  out << "\n], \"displayTimeUnit\": \"ms\"}\n";
}

void Profiler::write_chrome_trace(const std::string& path) const {
  std::ofstream f(path);
  if (!f) throw std::runtime_error("Profiler: cannot open " + path + " for writing");
  write_chrome_trace(f);
  f.close();
  if (!f) throw std::runtime_error("Profiler: error writing " + path);
}

}  // namespace tapegrad
