// Parameter files: round trip, exact bytes, and every way a file can be wrong.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "helpers.hpp"
#include "tapegrad/layers/layers.hpp"
#include "tapegrad/layers/safetensors.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;

namespace {
std::string temp(const std::string& name) {
  return "/tmp/tapegrad_test_st_" + name;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}
// A file with `header` as its JSON and `data` after it (header length as given, or the true one).
std::string file_with(const std::string& header, const std::string& data, long long length = -1) {
  std::string out(8, '\0');
  const unsigned long long n = length < 0 ? header.size() : static_cast<unsigned long long>(length);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}
std::shared_ptr<Sequential<float>> small_model(std::uint64_t seed) {
  Generator g(seed);
  return mlp<float>({3, 2, 2}, Activation::relu, g);
}
}  // namespace

TEST_CASE("safetensors: parameters round-trip bit for bit, float and double") {
  const std::string path = temp("roundtrip.safetensors");
  auto a = small_model(1), b = small_model(2);
  save_parameters(*a, path);
  load_parameters(*b, path);
  for (std::size_t i = 0; i < a->parameters().size(); ++i)
    test::check_close(b->parameters()[i].value(), a->parameters()[i].value(), 0);
  Generator g(3), h(4);
  auto da = mlp<double>({4, 3}, Activation::tanh, g), db = mlp<double>({4, 3}, Activation::tanh, h);
  save_parameters(*da, path);
  load_parameters(*db, path);
  test::check_close(db->parameters()[0].value(), da->parameters()[0].value(), 0);
  std::remove(path.c_str());
}

TEST_CASE("safetensors: the exact bytes of a tiny file") {
  const std::string path = temp("golden.safetensors");
  TensorFile f;
  StoredTensor b, a;
  b.f32 = Tensor<float>({2}, {1.0f, -2.0f});
  a.f64 = Tensor<double>({1, 1}, {0.5});
  f.tensors = {{"b", b}, {"a", a}};
  f.metadata["format"] = "pt";
  save_tensors(path, f);
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F64","shape":[1,1],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
  std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  const std::string data = std::string("\x00\x00\x00\x00\x00\x00\xe0\x3f", 8) +  // 0.5 (f64 LE)
                           std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);   // 1, −2 (f32 LE)
  CHECK(test::read_file(path) == file_with(padded, data));
  CHECK(padded.size() % 8 == 0);
  const TensorFile back = load_tensors(path);
  REQUIRE(back.tensors.size() == 2);
  CHECK(back.tensors[0].first == "a");
  CHECK(back.tensors[0].second.f64[0] == 0.5);
  CHECK(back.tensors[1].second.f32[1] == -2.0f);
  CHECK(back.metadata.at("format") == "pt");
  std::remove(path.c_str());
}

TEST_CASE(
    "safetensors: every malformed file is refused, naming file and tensor, changing nothing") {
  const std::string path = temp("bad.safetensors");
  auto model = small_model(5);
  save_parameters(*model, path);
  const std::string good = test::read_file(path);
  const Tensor<float> before = model->parameters()[0].value();
  auto refused = [&](const std::string& bytes, const std::string& expected) {
    write_bytes(path, bytes);
    const std::string msg = test::error_of([&] { load_parameters(*model, path); });
    INFO(msg);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find(expected) != std::string::npos);
    test::check_close(model->parameters()[0].value(), before, 0);  // unchanged
  };
  auto header_of = [&](const std::string& bytes) {
    unsigned long long n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
    return bytes.substr(8, n);
  };
  const std::string h = header_of(good), data = good.substr(8 + h.size());
  auto replace = [](std::string s, const std::string& from, const std::string& to) {
    const std::size_t at = s.find(from);
    REQUIRE(at != std::string::npos);
    return s.replace(at, from.size(), to);
  };

  refused(good.substr(0, good.size() - 4), "the file is truncated");
  refused(good + "junk", "bytes of data after the last tensor");
  refused(good.substr(0, 5), "too short");
  refused(file_with(h, data, static_cast<long long>(good.size())), "runs past the end");
  refused(file_with(h, data, 200'000'000), "exceeds the limit");
  refused(file_with("{not json", data), "malformed JSON header");
  refused(file_with(replace(h, "\"0.bias\"", "\"0.bias_renamed\""), data),
          "tensor \"0.bias\" of the model is missing");
  refused(file_with(replace(h, "\"shape\":[2,3]", "\"shape\":[3,2]"), data),
          "tensor \"0.weight\" has shape [3, 2] but the model's has shape [2, 3]");
  refused(file_with(replace(h, "\"dtype\":\"F32\"", "\"dtype\":\"BF16\""), data),
          "unsupported dtype \"BF16\"");
  refused(file_with(replace(h, "\"data_offsets\":[0,8]", "\"data_offsets\":[0,12]"), data),
          "do not hold F32");
  // An extra tensor in the file: append a 4-byte F32 scalar.
  std::string extra = h.substr(0, h.find_last_not_of(' '));  // without the closing brace
  const std::size_t end = data.size();
  extra += ",\"surplus\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[" + std::to_string(end) +
           "," + std::to_string(end + 4) + "]}}";
  refused(file_with(extra, data + std::string(4, '\0')),
          "\"surplus\" in the file is not a parameter");
  // F64 file into a float model.
  Generator g(6);
  auto dmodel = mlp<double>({3, 2, 2}, Activation::relu, g);
  save_parameters(*dmodel, path);
  refused(test::read_file(path), "is F64 but the model is F32");
  CHECK(test::error_of([&] {
          load_parameters(*model, "/nonexistent/x.safetensors");
        }).find("/nonexistent/x.safetensors") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("safetensors: a failed save leaves the previous file intact") {
  const std::string path = temp("keep.safetensors");
  auto model = small_model(7);
  save_parameters(*model, path);
  const std::string good = test::read_file(path);
  CHECK(test::error_of([&] {
          save_parameters(*model, "/nonexistent-dir/m.safetensors");
        }).find("cannot write") != std::string::npos);
  TensorFile dup;
  StoredTensor t;
  t.f32 = Tensor<float>::zeros({1});
  dup.tensors = {{"x", t}, {"x", t}};
  CHECK(test::error_of([&] { save_tensors(path, dup); }).find("\"x\" given twice") !=
        std::string::npos);
  CHECK(test::read_file(path) == good);
  std::remove(path.c_str());
}

TEST_CASE("safetensors: a tensor with no elements round-trips") {
  const std::string path = temp("empty.safetensors");
  TensorFile f;
  StoredTensor empty, one;
  empty.f32 = Tensor<float>(Shape{0, 3});
  one.f64 = Tensor<double>({1}, {2.5});
  f.tensors = {{"empty", empty}, {"one", one}};
  save_tensors(path, f);
  const TensorFile back = load_tensors(path);
  REQUIRE(back.tensors.size() == 2);
  CHECK(back.tensors[0].second.shape() == Shape{0, 3});
  CHECK(back.tensors[1].second.f64[0] == 2.5);
  std::remove(path.c_str());
}

TEST_CASE("safetensors: sizes are checked against the file before anything is read or allocated") {
  const std::string path = temp("sizes.safetensors");
  // A shape whose element count overflows 64 bits: 4611686018427387907 · 4 · 4 bytes wraps to 48.
  write_bytes(path, file_with(R"({"x":{"dtype":"F32","shape":[4611686018427387907,4],)"
                              R"("data_offsets":[0,48]}})",
                              std::string(48, '\0')));
  std::string msg = test::error_of([&] { load_tensors(path); });
  CHECK(msg.find(path + ": tensor \"x\": shape [4611686018427387907, 4] overflows") !=
        std::string::npos);
  // A valid file followed by a 4 GiB sparse tail: refused from the file's size, not read.
  auto model = small_model(8);
  save_parameters(*model, path);
  const long long real = static_cast<long long>(test::read_file(path).size());
  REQUIRE(::truncate(path.c_str(), real + (4LL << 30)) == 0);
  msg = test::error_of([&] { load_parameters(*model, path); });
  CHECK(msg.find("4294967296 bytes of data after the last tensor") != std::string::npos);
  std::remove(path.c_str());
  // Devices, pipes and folders have no size to check against: refused by name.
  CHECK(test::error_of([] { load_tensors("/dev/zero"); }) ==
        "/dev/zero: not a regular file (a parameter file must be one)");
  CHECK(test::error_of([] { load_tensors("/tmp"); }) == "/tmp: is a directory, not a file");
}

TEST_CASE("safetensors: names from the file are escaped in errors; duplicate keys are refused") {
  const std::string path = temp("names.safetensors");
  write_bytes(path,
              file_with(R"({"a\nb\u001b[31m":{"dtype":"I8","shape":[],"data_offsets":[0,1]}})",
                        std::string(1, '\0')));
  const std::string msg = test::error_of([&] { load_tensors(path); });
  CHECK(msg.find("tensor \"a\\nb\\u001b[31m\": unsupported dtype \"I8\"") != std::string::npos);
  CHECK(msg.find('\n') == std::string::npos);
  CHECK(msg.find('\x1b') == std::string::npos);
  write_bytes(path, file_with(R"({"x":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                              R"("x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                              std::string(4, '\0')));
  CHECK(test::error_of([&] { load_tensors(path); }) == path + ": the header names \"x\" twice");
  write_bytes(path, file_with(R"({"__metadata__":{"k":"1","k":"2"}})", ""));
  CHECK(test::error_of([&] { load_tensors(path); }) == path + ": the header names \"k\" twice");
  std::remove(path.c_str());
}

TEST_CASE("safetensors: a save removes temporary files that killed saves left beside the target") {
  const std::string path = temp("stale.safetensors");
  const std::string dead = path + ".tmp-2147483647";  // no process has this id
  const std::string alive = path + ".tmp-" + std::to_string(::getppid());
  const std::string other = temp("other.safetensors") + ".tmp-2147483647";
  const std::string unlike = path + ".tmp-12x";
  for (const std::string& p : {dead, alive, other, unlike}) write_bytes(p, "partial");
  save_parameters(*small_model(9), path);
  CHECK(test::read_file(dead).empty());
  for (const std::string& p : {alive, other, unlike}) {
    CHECK(test::read_file(p) == "partial");
    std::remove(p.c_str());
  }
  std::remove(path.c_str());
}

namespace {
// A layer with a parameter, a buffer and a count buffer, as BatchNorm has them.
struct Tracked : Module<float> {
  Tensor<float> running = Tensor<float>::full({3}, 0.5f);
  Tensor<float> seen = Tensor<float>::scalar(0);
  Var<float> scale;
  Tracked() {
    scale = register_parameter("weight", Tensor<float>::ones({3}));
    register_buffer("running_mean", running);
    register_buffer("num_batches_tracked", seen, true);
  }
  Var<float> forward(const Var<float>& x) override { return x * scale; }
  std::string name() const override { return "Tracked()"; }
  Shape output_shape(const Shape& s) const override { return s; }
};
}  // namespace

TEST_CASE("safetensors: buffers are saved and loaded with the parameters; counts as I64") {
  Sequential<float> model;
  model.add(std::make_shared<Tracked>());
  auto& layer = static_cast<Tracked&>(*model.children()[0].second);
  layer.running[1] = 7;
  layer.seen[0] = 12;
  const std::string path = temp("buffers.safetensors");
  save_parameters(model, path);
  const TensorFile f = load_tensors(path);
  REQUIRE(f.find("0.num_batches_tracked") != nullptr);
  CHECK(f.find("0.num_batches_tracked")->dtype() == "I64");
  CHECK(f.find("0.num_batches_tracked")->i64[0] == 12.0);
  CHECK(f.find("0.running_mean")->f32[1] == 7.0f);
  CHECK(model.named_buffers().size() == 2);
  CHECK(model.parameters().size() == 1);  // buffers are not trained

  Sequential<float> other;
  other.add(std::make_shared<Tracked>());
  auto& copy = static_cast<Tracked&>(*other.children()[0].second);
  load_parameters(other, path);
  CHECK(copy.running[1] == 7.0f);
  CHECK(copy.seen[0] == 12.0f);

  // Strict: a file without the buffers (an older file) is refused, naming the missing one.
  TensorFile without = f;
  without.tensors.erase(without.tensors.begin());  // sorted: 0.num_batches_tracked first
  save_tensors(path, without);
  copy.seen[0] = 3;
  CHECK(test::error_of([&] {
          load_parameters(other, path);
        }).find("\"0.num_batches_tracked\" of the model is missing") != std::string::npos);
  CHECK(copy.seen[0] == 3.0f);  // nothing changed
  std::remove(path.c_str());
}

TEST_CASE("safetensors: I64 values beyond 2^53 are refused, naming the tensor") {
  const std::string path = temp("i64.safetensors");
  std::string data(8, '\0');
  data[7] = 0x7f;  // 0x7f00000000000000
  write_bytes(path, file_with(R"({"n":{"dtype":"I64","shape":[],"data_offsets":[0,8]}})", data));
  CHECK(test::error_of([&] { load_tensors(path); }).find("\"n\": I64 value") != std::string::npos);
  std::remove(path.c_str());
}
