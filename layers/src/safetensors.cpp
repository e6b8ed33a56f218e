#include "tapegrad/layers/safetensors.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <type_traits>

namespace tapegrad {
namespace {

static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE 754 floats expected");

std::runtime_error file_error(const std::string& path, const std::string& what) {
  return std::runtime_error(path + ": " + what);
}

// Removes the files `path`.tmp-PID whose process PID no longer runs: what killed saves left.
void remove_stale_temporaries(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  const std::string folder = slash == std::string::npos ? "./" : path.substr(0, slash + 1);
  const std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp-";
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(folder.c_str()), ::closedir);
  if (!dir) return;  // the save itself will report why the folder is unusable
  while (const dirent* entry = ::readdir(dir.get())) {
    const std::string name = entry->d_name;
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.empty() || digits.size() > 10 ||
        digits.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const unsigned long long pid = std::stoull(digits);
    if (pid == 0 || pid > 2147483647ULL || static_cast<pid_t>(pid) == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      ::unlink((folder + name).c_str());
  }
}

std::string shape_json(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.rank(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

std::string quote(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

const StoredTensor* TensorFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

InputFile::InputFile(const std::string& path, const std::string& kind) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw file_error(path, std::strerror(errno));
  struct stat st;
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    throw file_error(path, std::strerror(err));
  }
  const char* problem = S_ISDIR(st.st_mode)   ? "is a directory, not a file"
                        : S_ISREG(st.st_mode) ? nullptr
                                              : "not a regular file";
  if (problem) {
    ::close(fd_);
    throw file_error(
        path, S_ISDIR(st.st_mode) ? problem : std::string(problem) + " (" + kind + " must be one)");
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
}

InputFile::~InputFile() {
  ::close(fd_);
}

std::size_t InputFile::read_some(std::uint64_t offset, void* out, std::size_t n) const {
  for (;;) {
    const ssize_t got = ::pread(fd_, out, n, static_cast<off_t>(offset));
    if (got >= 0) return static_cast<std::size_t>(got);
    if (errno != EINTR)
      throw file_error(path_, std::string("cannot read: ") + std::strerror(errno));
  }
}

void InputFile::read(std::uint64_t offset, void* out, std::size_t n) const {
  char* to = static_cast<char*>(out);
  while (n > 0) {
    const std::size_t got = read_some(offset, to, n);
    if (got == 0) throw file_error(path_, "ends early (was it changed while being read?)");
    offset += got, to += got, n -= got;
  }
}

void write_file_atomically(const std::string& path, const std::string& contents) {
  remove_stale_temporaries(path);
  const std::string temp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error(path + ": cannot write: " + std::strerror(errno));
  std::size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      throw std::runtime_error(path + ": cannot write: " + std::strerror(err));
    }
    done += static_cast<std::size_t>(n);
  }
  int err = ::fsync(fd) == 0 ? 0 : errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && std::rename(temp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(temp.c_str());
    throw std::runtime_error(path + ": cannot write: " + std::strerror(err));
  }
}

void save_tensors(const std::string& path, const TensorFile& file) {
  std::vector<const std::pair<std::string, StoredTensor>*> order;
  std::set<std::string> names;
  for (const auto& entry : file.tensors) {
    if (!names.insert(entry.first).second)
      throw std::invalid_argument(path + ": tensor \"" + entry.first + "\" given twice");
    if (entry.first == "__metadata__")
      throw std::invalid_argument(path + ": \"__metadata__\" is not a valid tensor name");
    order.push_back(&entry);
  }
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
  std::string header = "{";
  if (!file.metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : file.metadata) {
      header += (first ? "" : ",") + quote(k) + ":" + quote(v);
      first = false;
    }
    header += "}";
  }
  std::string data;
  for (const auto* entry : order) {
    const StoredTensor& t = entry->second;
    const bool f32 = t.f32.defined();
    std::vector<std::int64_t> counts;  // I64: the doubles as integers
    if (t.i64.defined())
      for (double v : t.i64) {
        if (!(std::abs(v) <= 9007199254740992.0) || v != std::floor(v))
          throw std::invalid_argument(path + ": tensor " + quote(entry->first) +
                                      " is I64 but holds " + std::to_string(v) +
                                      ", not a whole number within 2^53");
        counts.push_back(static_cast<std::int64_t>(v));
      }
    const char* bytes = f32               ? reinterpret_cast<const char*>(t.f32.data())
                        : t.i64.defined() ? reinterpret_cast<const char*>(counts.data())
                                          : reinterpret_cast<const char*>(t.f64.data());
    const std::size_t size = f32 ? t.f32.numel() * 4 : t.shape().numel() * 8;
    if (header.size() > 1) header += ",";
    header += quote(entry->first) + ":{\"dtype\":\"" + t.dtype() +
              "\",\"shape\":" + shape_json(t.shape()) + ",\"data_offsets\":[" +
              std::to_string(data.size()) + "," + std::to_string(data.size() + size) + "]}";
    data.append(bytes, size);
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string contents(8, '\0');
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) contents[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  contents += header;
  contents += data;
  write_file_atomically(path, contents);
}

TensorFile load_tensors(const std::string& path) {
  const InputFile in(path, "a parameter file");
  const std::uint64_t size = in.size();
  if (size < 8)
    throw file_error(path, "not a safetensors file: " + std::to_string(size) +
                               " bytes, too short for the header length");
  unsigned char length[8];
  in.read(0, length, 8);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | length[i];
  if (n > max_safetensors_header)
    throw file_error(path, "header length " + std::to_string(n) + " exceeds the limit of " +
                               std::to_string(max_safetensors_header) + " bytes");
  if (8 + n > size)
    throw file_error(path, "header length " + std::to_string(n) +
                               " runs past the end of the file (" + std::to_string(size) +
                               " bytes): truncated or not a safetensors file");
  std::string text(n, '\0');
  in.read(8, text.data(), n);
  // The parser keeps the last of duplicate keys; a file that names one twice is refused instead.
  std::vector<std::set<std::string>> keys;  // per open object
  const auto no_duplicates = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& v) {
    using event_t = nlohmann::json::parse_event_t;
    if (event == event_t::object_start) keys.emplace_back();
    if (event == event_t::object_end) keys.pop_back();
    if (event == event_t::key && !keys.back().insert(v.get<std::string>()).second)
      throw file_error(path, "the header names " + quote(v.get<std::string>()) + " twice");
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, no_duplicates);
  } catch (const nlohmann::json::exception& e) {
    throw file_error(path, std::string("malformed JSON header: ") + e.what());
  }
  if (!header.is_object()) throw file_error(path, "the header is not a JSON object");
  const std::uint64_t data_start = 8 + n, data_size = size - data_start;

  TensorFile file;
  struct Span {
    std::uint64_t begin, end;
    std::string name;
    Shape shape;
    std::string dtype;
  };
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw file_error(path, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          throw file_error(path, "__metadata__ value of " + quote(m.key()) + " is not a string");
        file.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string what = "tensor " + quote(name) + ": ";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets"))
      throw file_error(path, what + "needs dtype, shape and data_offsets");
    if (!v["dtype"].is_string()) throw file_error(path, what + "dtype is not a string");
    const std::string dtype = v["dtype"].get<std::string>();
    if (dtype != "F32" && dtype != "F64" && dtype != "I64")
      throw file_error(
          path, what + "unsupported dtype " + quote(dtype) + " (tapegrad reads F32, F64 and I64)");
    const nlohmann::json& js = v["shape"];
    const nlohmann::json& jo = v["data_offsets"];
    if (!js.is_array() || js.size() > max_rank)
      throw file_error(
          path, what + "shape is not an array of at most " + std::to_string(max_rank) + " dims");
    Shape shape;
    for (const auto& d : js) {
      if (!d.is_number_unsigned()) throw file_error(path, what + "shape has a non-integer dim");
      shape.push_back(d.get<std::size_t>());
    }
    const std::size_t esize = dtype == "F32" ? 4 : 8;
    std::size_t bytes = esize;
    for (std::size_t d : shape)
      if (__builtin_mul_overflow(bytes, d, &bytes))
        throw file_error(path, what + "shape " + shape.to_string() + " overflows 64-bit sizes");
    if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() ||
        !jo[1].is_number_unsigned())
      throw file_error(path, what + "data_offsets is not [begin, end]");
    const std::uint64_t b = jo[0].get<std::uint64_t>(), e = jo[1].get<std::uint64_t>();
    if (e < b || e - b != bytes)
      throw file_error(path, what + "data_offsets [" + std::to_string(b) + ", " +
                                 std::to_string(e) + "] do not hold " + dtype + " " +
                                 shape.to_string() + " (" + std::to_string(bytes) + " bytes)");
    if (e > data_size)
      throw file_error(path, what + "data_offsets end at " + std::to_string(e) +
                                 " but the data section has " + std::to_string(data_size) +
                                 " bytes: the file is truncated or its header lies");
    spans.push_back({b, e, name, std::move(shape), dtype});
  }
  std::sort(spans.begin(), spans.end(), [](const Span& x, const Span& y) {
    return x.begin < y.begin || (x.begin == y.begin && x.end < y.end);
  });
  std::uint64_t at = 0;
  for (const Span& s : spans) {
    if (s.begin < at)
      throw file_error(path, "tensor " + quote(s.name) + ": its data overlaps another tensor's");
    if (s.begin > at)
      throw file_error(path, "tensor " + quote(s.name) + ": a gap of " +
                                 std::to_string(s.begin - at) + " bytes before its data");
    at = s.end;
  }
  if (at != data_size)
    throw file_error(path, std::to_string(data_size - at) +
                               " bytes of data after the last tensor: the header lies about "
                               "the offsets");
  // Everything checked against the file's size: the tensors, which fill the data exactly, can
  // be allocated and read.
  for (const Span& s : spans) {
    StoredTensor t;
    if (s.dtype == "F32") {
      t.f32 = Tensor<float>(s.shape);
      if (s.end > s.begin) in.read(data_start + s.begin, t.f32.data(), s.end - s.begin);
    } else if (s.dtype == "F64") {
      t.f64 = Tensor<double>(s.shape);
      if (s.end > s.begin) in.read(data_start + s.begin, t.f64.data(), s.end - s.begin);
    } else {
      std::vector<std::int64_t> counts(s.shape.numel());
      if (s.end > s.begin) in.read(data_start + s.begin, counts.data(), s.end - s.begin);
      t.i64 = Tensor<double>(s.shape);
      for (std::size_t k = 0; k < counts.size(); ++k) {
        if (counts[k] > (std::int64_t(1) << 53) || counts[k] < -(std::int64_t(1) << 53))
          throw file_error(path, "tensor " + quote(s.name) + ": I64 value " +
                                     std::to_string(counts[k]) + " at element " +
                                     std::to_string(k) + " is beyond 2^53");
        t.i64[k] = static_cast<double>(counts[k]);
      }
    }
    file.tensors.emplace_back(s.name, std::move(t));
  }
  std::sort(file.tensors.begin(), file.tensors.end(),
            [&](const auto& x, const auto& y) { return x.first < y.first; });
  return file;
}

namespace nn {

template <class T>
std::vector<std::pair<std::string, StoredTensor>> state_tensors(const Module<T>& module,
                                                                const std::string& prefix) {
  std::vector<std::pair<std::string, StoredTensor>> out;
  auto stored = [](const Tensor<T>& value, bool count) {
    StoredTensor t;
    if (count)
      t.i64 = Tensor<double>::from(value.shape(), value);
    else if constexpr (std::is_same_v<T, float>)
      t.f32 = value;
    else
      t.f64 = value;
    return t;
  };
  for (const auto& [name, p] : module.named_parameters())
    out.emplace_back(prefix + name, stored(p.value(), false));
  for (const auto& [name, b] : module.named_buffers())
    out.emplace_back(prefix + name, stored(*b.tensor, b.is_count));
  return out;
}

namespace {
// Every parameter's and buffer's tensor, in state_tensors' order, and whether it is a count.
template <class T>
std::vector<std::pair<std::string, Buffer<T>>> state_targets(const Module<T>& module) {
  std::vector<std::pair<std::string, Buffer<T>>> targets;
  for (auto [name, p] : module.named_parameters())  // a handle: its value is the module's
    targets.emplace_back(name, Buffer<T>{&p.value(), false});
  for (const auto& named : module.named_buffers()) targets.push_back(named);
  return targets;
}
}  // namespace

template <class T>
std::vector<Tensor<T>> checked_state(const Module<T>& module, const TensorFile& file,
                                     const std::string& path, const std::string& prefix) {
  const char* want = std::is_same_v<T, float> ? "F32" : "F64";
  std::vector<Tensor<T>> values;
  std::set<std::string> expected;
  for (const auto& [target_name, target] : state_targets(module)) {
    const std::string name = prefix + target_name;
    expected.insert(name);
    const StoredTensor* t = file.find(name);
    if (!t)
      throw file_error(path, "tensor " + quote(name) + " of the model is missing from the file");
    const std::string dtype = t->dtype();
    if (dtype != want && !(target.is_count && dtype == "I64"))
      throw file_error(path, "tensor " + quote(name) + " is " + dtype + " but the model is " +
                                 (target.is_count ? std::string("I64 or ") + want : want));
    if (t->shape() != target.tensor->shape())
      throw file_error(path, "tensor " + quote(name) + " has shape " + t->shape().to_string() +
                                 " but the model's has shape " +
                                 target.tensor->shape().to_string());
    const Tensor<double>& wide = dtype == "I64" ? t->i64 : t->f64;
    if constexpr (std::is_same_v<T, float>)
      values.push_back(dtype == "F32" ? t->f32 : Tensor<float>::from(wide.shape(), wide));
    else
      values.push_back(wide);
  }
  for (const auto& [name, t] : file.tensors)
    if (name.compare(0, prefix.size(), prefix) == 0 && !expected.count(name))
      throw file_error(
          path, "tensor " + quote(name) + " in the file is not a parameter or buffer of the model");
  return values;
}

template <class T>
std::vector<Tensor<T>> state_values(const Module<T>& module) {
  std::vector<Tensor<T>> values;
  for (const auto& [name, target] : state_targets(module)) values.push_back(*target.tensor);
  return values;
}

template <class T>
void set_state(Module<T>& module, std::vector<Tensor<T>> values) {
  const auto targets = state_targets(module);
  if (values.size() != targets.size())
    throw std::invalid_argument("set_state: " + std::to_string(values.size()) + " values for " +
                                std::to_string(targets.size()) + " parameters and buffers");
  for (std::size_t i = 0; i < targets.size(); ++i)
    if (values[i].shape() != targets[i].second.tensor->shape())
      throw ShapeError("set_state: " + targets[i].first + " has shape " +
                       targets[i].second.tensor->shape().to_string() + ", the value " +
                       values[i].shape().to_string());
  for (std::size_t i = 0; i < targets.size(); ++i) *targets[i].second.tensor = std::move(values[i]);
}

template <class T>
void load_state_tensors(Module<T>& module, const TensorFile& file, const std::string& path,
                        const std::string& prefix) {
  set_state(module, checked_state(module, file, path, prefix));
}

template <class T>
void save_parameters(const Module<T>& module, const std::string& path) {
  TensorFile file;
  file.tensors = state_tensors(module);
  file.metadata["format"] = "pt";
  save_tensors(path, file);
}

template <class T>
void load_parameters(Module<T>& module, const std::string& path) {
  load_state_tensors(module, load_tensors(path), path);
}

#define TAPEGRAD_INSTANTIATE(T)                                                                 \
  template std::vector<std::pair<std::string, StoredTensor>> state_tensors(const Module<T>&,    \
                                                                           const std::string&); \
  template std::vector<Tensor<T>> checked_state(const Module<T>&, const TensorFile&,            \
                                                const std::string&, const std::string&);        \
  template std::vector<Tensor<T>> state_values(const Module<T>&);                               \
  template void set_state(Module<T>&, std::vector<Tensor<T>>);                                  \
  template void load_state_tensors(Module<T>&, const TensorFile&, const std::string&,           \
                                   const std::string&);                                         \
  template void save_parameters(const Module<T>&, const std::string&);                          \
  template void load_parameters(Module<T>&, const std::string&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace nn
}  // namespace tapegrad
