// pte_runner: load an ExecuTorch program (.pte), run it N times and print latency statistics as
// JSON -- latency without Python, as ExecuTorch's executor_runner measures it. Built against the
// headers and shared libraries of the executorch wheel (see CMakeLists.txt).
//
//   pte_runner MODEL.pte [--inputs x.npy] [--outputs y.npy] [--runs 50] [--warmup 10]
//              [--threads 1] [--json stats.json]
//
// Same options and JSON keys as se_edge/runner.py (load_ms, first_ms, warmup, threads, count, min,
// mean, std, p50, p90, p99, peak_rss_mb); executor_runner's spellings --num_executions and
// --cpu_threads are accepted too. --inputs is a float32 .npy of shape (N, ...) (uint8 pixels for a program that takes uint8): every sample is
// run once and the outputs are written to --outputs; the timed runs use the first sample (zeros
// without --inputs). Errors: one line on stderr, exit code 2.
#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>
#include <executorch/runtime/platform/runtime.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "latency_stats.h"
#include "npy.h"
#include "runner_cli.h"

// The wheel ships libexecutorch_threadpool.so but not threadpool.h; these are the two entry
// points executor_runner uses to set --cpu_threads, declared as that header declares them.
namespace executorch::extension::threadpool {
class ThreadPool {
 public:
  bool _unsafe_reset_threadpool(uint32_t num_threads);
  size_t get_thread_count() const;
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool

using executorch::extension::from_blob;
using executorch::extension::module::Module;
using executorch::runtime::Error;
using runner_cli::Clock;

namespace {

using runner_cli::ms_since;
using runner_cli::Options;

const char* kUsage =
    "usage: pte_runner MODEL.pte [--inputs x.npy] [--outputs y.npy] [--runs N] [--warmup N] "
    "[--threads N] [--json FILE]";

std::string error_name(Error e) {
  return "error code 0x" + [&] { std::ostringstream s; s << std::hex << static_cast<int>(e); return s.str(); }();
}

using executorch::aten::ScalarType;

// Runs `sample` (one input of the model's shape and `type`: float32, or uint8 pixels for an app file) and returns
// its first output as floats.
std::vector<float> run_once(Module& module, void* sample, const std::vector<executorch::aten::SizesType>& sizes,
                            ScalarType type, std::vector<int64_t>* out_shape) {
  auto input = from_blob(sample, sizes, type);
  auto result = module.forward(input);
  if (!result.ok()) throw std::runtime_error("forward failed: " + error_name(result.error()));
  const auto& out = result.get().at(0).toTensor();
  if (out.scalar_type() != executorch::aten::ScalarType::Float)
    throw std::runtime_error("output 0 is not float32; this runner reads float outputs only");
  if (out_shape) out_shape->assign(out.sizes().begin(), out.sizes().end());
  return std::vector<float>(out.const_data_ptr<float>(), out.const_data_ptr<float>() + out.numel());
}

std::string json_stats(const Options& o, double load_ms, double first_ms, const LatencyStats& s, size_t threads_used) {
  std::ostringstream j;
  j.precision(9);
  j << "{\n  \"load_ms\": " << load_ms << ",\n  \"first_ms\": " << first_ms << ",\n  \"warmup\": " << o.warmup
    << ",\n  \"threads\": " << o.threads << ",\n  \"threadpool_threads\": " << threads_used
    << ",\n  \"runtime\": \"executorch-native\",\n  \"runtime_version\": \"" << runner_cli::json_escape(SE_EDGE_RUNTIME_VERSION) << "\",\n  \"device\": " << runner_cli::device_json() << ",\n  \"count\": " << s.count << ",\n  \"min\": " << s.min
    << ",\n  \"mean\": " << s.mean << ",\n  \"std\": " << s.std << ",\n  \"p50\": " << s.p50
    << ",\n  \"p90\": " << s.p90 << ",\n  \"p99\": " << s.p99 << ",\n  \"peak_rss_mb\": " << runner_cli::peak_rss_mb()
    << ",\n  \"model\": \"" << runner_cli::json_name(o.model) << "\"\n}\n";
  return j.str();
}

// Loads the program and its forward method; `load_ms` gets the wall time of both.
std::unique_ptr<Module> load(const std::string& path, double* load_ms) {
  auto start = Clock::now();
  auto module = std::make_unique<Module>(path, Module::LoadMode::Mmap);
  Error err = module->load_forward();
  *load_ms = ms_since(start);
  if (err != Error::Ok) throw std::runtime_error("cannot load " + path + " as an ExecuTorch program (" + error_name(err) + ")");
  return module;
}

int run(const Options& o) {
  executorch::runtime::runtime_init();
  auto* pool = executorch::extension::threadpool::get_threadpool();
  if (pool) pool->_unsafe_reset_threadpool(static_cast<uint32_t>(o.threads));

  if (!std::ifstream(o.model).good()) throw std::runtime_error("model not found: " + o.model);
  double load_ms = 0;
  auto module = load(o.model, &load_ms);
  auto meta = module->method_meta("forward");
  if (!meta.ok() || meta->num_inputs() < 1) throw std::runtime_error(o.model + ": no forward method with an input");
  auto in_meta = meta->input_tensor_meta(0);
  if (!in_meta.ok() || (in_meta->scalar_type() != ScalarType::Float && in_meta->scalar_type() != ScalarType::Byte))
    throw std::runtime_error(o.model + ": input 0 is neither a float32 nor a uint8 tensor");
  const ScalarType type = in_meta->scalar_type();
  std::vector<executorch::aten::SizesType> sizes(in_meta->sizes().begin(), in_meta->sizes().end());
  size_t per_sample = 1;
  for (auto d : sizes) per_sample *= static_cast<size_t>(d);

  npy::Array x;
  if (!o.inputs.empty()) {
    x = npy::load(o.inputs);
    size_t n = x.shape.empty() ? 0 : static_cast<size_t>(x.shape[0]);
    if (n == 0 || x.data.size() != n * per_sample)
      throw std::runtime_error(o.inputs + ": expected (N, ...) samples of " + std::to_string(per_sample) + " floats each");
  } else {
    x.shape = {1};
    x.data.assign(per_sample, 0.0f);
    x.uint8 = true;
  }
  if (type == ScalarType::Byte && !x.uint8)
    throw std::runtime_error(o.model + " takes uint8 pixels: give --inputs a uint8 .npy");
  std::vector<uint8_t> pixels;  // the uint8 input's bytes, each a whole number 0..255 as read
  if (type == ScalarType::Byte) pixels.assign(x.data.begin(), x.data.end());
  auto sample_at = [&](int64_t i) -> void* {
    return type == ScalarType::Byte ? static_cast<void*>(pixels.data() + i * per_sample)
                                    : static_cast<void*>(x.data.data() + i * per_sample);
  };
  if (!o.outputs.empty()) {
    npy::Array y;
    std::vector<int64_t> out_shape;
    for (int64_t i = 0; i < x.shape[0]; ++i) {
      auto out = run_once(*module, sample_at(i), sizes, type, &out_shape);
      y.data.insert(y.data.end(), out.begin(), out.end());
    }
    y.shape = {x.shape[0]};  // (N, *out_shape[1:]): batch-1 outputs stacked, as runner.predict does
    y.shape.insert(y.shape.end(), out_shape.begin() + (out_shape.empty() ? 0 : 1), out_shape.end());
    npy::save(o.outputs, y);
    module = load(o.model, &load_ms);  // as runner.benchmark does: time load and first run on a fresh program
  }

  void* sample = sample_at(0);
  auto start = Clock::now();
  run_once(*module, sample, sizes, type, nullptr);
  const double first_ms = ms_since(start);
  for (int i = 0; i < o.warmup; ++i) run_once(*module, sample, sizes, type, nullptr);
  std::vector<double> times;
  times.reserve(o.runs);
  for (int i = 0; i < o.runs; ++i) {
    start = Clock::now();
    run_once(*module, sample, sizes, type, nullptr);
    times.push_back(ms_since(start));
  }
  runner_cli::write_stats(o.json, json_stats(o, load_ms, first_ms, summarize(times), pool ? pool->get_thread_count() : 0));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(runner_cli::parse_args(argc, argv, kUsage));
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
}
