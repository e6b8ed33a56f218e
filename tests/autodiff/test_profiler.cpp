// The profiler: calls per op, backward events, the table's order, the Chrome trace's JSON, and
// what happens with no profiler or with two.
#include "tapegrad/autodiff/profiler.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "helpers.hpp"

using namespace tapegrad;

namespace {
// loss = Σ relu(x·w)²: one matmul, one relu, one mul, one sum; four backward rules.
Var<double> small_graph(const Var<double>& x, const Var<double>& w) {
  Var<double> h = relu(matmul(x, w));
  return sum(h * h);
}

const Profiler::OpStats* find(const std::vector<Profiler::OpStats>& rows, const std::string& op) {
  for (const auto& r : rows)
    if (r.op == op) return &r;
  return nullptr;
}
}  // namespace

TEST_CASE("profiler: counts forward and backward calls per op") {
  Var<double> x = Var<double>::parameter(Tensor<double>({2, 3}, {1, -2, 3, 4, 5, -6}));
  Var<double> w = Var<double>::parameter(Tensor<double>({3, 2}, {1, 2, 3, 4, 5, 6}));
  Profiler prof;
  CHECK(prof.recording());
  for (int step = 0; step < 3; ++step) {
    small_graph(x, w).backward();
    Profiler::mark();
  }
  prof.stop();
  CHECK_FALSE(prof.recording());
  const auto rows = prof.stats();
  REQUIRE(rows.size() == 4);
  for (const char* op : {"matmul", "relu", "mul", "sum"}) {
    CAPTURE(op);
    const Profiler::OpStats* r = find(rows, op);
    REQUIRE(r != nullptr);
    CHECK(r->calls == 3);
    CHECK(r->backward_calls == 3);
    CHECK(r->forward_ms >= 0);
    CHECK(r->backward_ms >= 0);
  }
  CHECK(prof.events().size() == 24);
  std::size_t backward_events = 0;
  for (const auto& e : prof.events()) {
    CHECK(e.duration_ns >= 0);
    CHECK(e.start_ns >= 0);
    backward_events += e.backward ? 1 : 0;
  }
  CHECK(backward_events == 12);
  CHECK(prof.total_ms() > 0);
  for (std::size_t i = 1; i < rows.size(); ++i) CHECK(rows[i - 1].total_ms() >= rows[i].total_ms());
}

TEST_CASE("profiler: backward events follow the tape in reverse; ops inside rules are not seen") {
  Var<double> x = Var<double>::parameter(Tensor<double>({4}, {1, -2, 3, 4}));
  Profiler prof;
  Var<double> loss = sum(exp(x));
  loss.backward();
  prof.stop();
  const auto& ev = prof.events();
  REQUIRE(ev.size() == 4);
  CHECK(std::string(ev[0].op) == "exp");
  CHECK(std::string(ev[1].op) == "sum");
  CHECK(std::string(ev[2].op) == "sum");
  CHECK(ev[2].backward);
  CHECK(std::string(ev[3].op) == "exp");
  CHECK(ev[3].backward);
  // Events are in time order and do not overlap.
  for (std::size_t i = 1; i < ev.size(); ++i)
    CHECK(ev[i].start_ns >= ev[i - 1].start_ns + ev[i - 1].duration_ns);
}

TEST_CASE("profiler: ops under NoGradGuard are counted as forward calls") {
  Var<float> x(Tensor<float>({3}, {1, 2, 3}));
  Profiler prof;
  {
    NoGradGuard no_grad;
    (void)relu(x);
  }
  (void)relu(x);  // untracked input: recorded on no tape, still timed
  prof.stop();
  const auto rows = prof.stats();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].op == "relu");
  CHECK(rows[0].calls == 2);
  CHECK(rows[0].backward_calls == 0);
}

TEST_CASE("profiler: nothing is recorded while no profiler is recording") {
  Var<double> x = Var<double>::parameter(Tensor<double>({2}, {1, 2}));
  sum(x * x).backward();  // before
  Profiler prof;
  prof.stop();
  sum(x * x).backward();  // after stop
  CHECK(prof.events().empty());
  CHECK(prof.stats().empty());
  CHECK(prof.total_ms() == 0);
  Profiler::mark();  // no profiler recording: does nothing
  // Results do not change with the profiler on.
  x.zero_grad();
  sum(x * x).backward();
  const Tensor<double> off = x.grad();
  x.zero_grad();
  {
    Profiler on;
    sum(x * x).backward();
  }
  CHECK(test::bit_identical(off, x.grad()));
}

TEST_CASE("profiler: one per thread; a second one throws, a new one after stop() works") {
  Profiler a;
  CHECK_THROWS_AS(Profiler(), std::logic_error);
  a.stop();
  Profiler b;  // a is stopped: b records
  Var<double> x = Var<double>::parameter(Tensor<double>({2}, {1, 2}));
  sum(x).backward();
  CHECK(a.events().empty());
  CHECK(b.events().size() == 2);
  // Another thread has its own (empty) slot.
  std::size_t other_events = 99;
  std::thread t([&] {
    Profiler c;
    Var<double> y = Var<double>::parameter(Tensor<double>({2}, {1, 2}));
    sum(y).backward();
    other_events = c.events().size();
  });
  t.join();
  CHECK(other_events == 2);
  CHECK(b.events().size() == 2);
}

TEST_CASE("profiler: the table is sorted by total time and names every op") {
  Var<double> x = Var<double>::parameter(Tensor<double>({64, 64}));
  Var<double> w = Var<double>::parameter(Tensor<double>({64, 64}));
  Profiler prof;
  for (int step = 0; step < 2; ++step) small_graph(x, w).backward();
  prof.stop();
  std::ostringstream out;
  prof.print(out);
  const std::string table = out.str();
  CHECK(table.find("forward_ms") != std::string::npos);
  CHECK(table.find("backward_ms") != std::string::npos);
  CHECK(table.find("total_ms") != std::string::npos);
  std::istringstream lines(table);
  std::string line;
  std::getline(lines, line);  // header
  std::vector<double> totals;
  std::vector<std::string> names;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    if (name == "total") break;
    std::size_t calls = 0, bwd = 0;
    double f = 0, b = 0, t = 0;
    fields >> calls >> bwd >> f >> b >> t;
    CHECK(calls == 2);
    CHECK(bwd == 2);
    names.push_back(name);
    totals.push_back(t);
  }
  CHECK(names.size() == 4);
  for (std::size_t i = 1; i < totals.size(); ++i) CHECK(totals[i - 1] >= totals[i]);
}

TEST_CASE("profiler: the Chrome trace is valid JSON with one X event per recorded event") {
  Var<double> x = Var<double>::parameter(Tensor<double>({2, 3}, {1, -2, 3, 4, 5, -6}));
  Var<double> w = Var<double>::parameter(Tensor<double>({3, 2}, {1, 2, 3, 4, 5, 6}));
  Profiler prof;
  small_graph(x, w).backward();
  prof.stop();
  const std::string path = "test_profiler_trace.json";
  prof.write_chrome_trace(path);
  std::ifstream f(path);
  REQUIRE(f);
  const nlohmann::json j = nlohmann::json::parse(f);
  std::remove(path.c_str());
  REQUIRE(j.contains("traceEvents"));
  const auto& ev = j["traceEvents"];
  REQUIRE(ev.is_array());
  REQUIRE(ev.size() == prof.events().size());
  std::size_t backward = 0;
  for (std::size_t i = 0; i < ev.size(); ++i) {
    const auto& e = ev[i];
    CHECK(e["ph"] == "X");
    CHECK(e["name"] == prof.events()[i].op);
    CHECK(e["ts"].is_number());
    CHECK(e["dur"].is_number());
    CHECK(e["dur"].get<double>() >= 0);
    CHECK(e["pid"].is_number_integer());
    CHECK(e["tid"].is_number_integer());
    backward += e["cat"] == "backward" ? 1 : 0;
  }
  CHECK(backward == 4);
  CHECK_THROWS_AS(prof.write_chrome_trace("/nonexistent-dir/trace.json"), std::runtime_error);
  // An empty profile is valid JSON too.
  Profiler empty;
  empty.stop();
  std::ostringstream out;
  empty.write_chrome_trace(out);
  CHECK(nlohmann::json::parse(out.str())["traceEvents"].empty());
}
