// pte_runner: load an ExecuTorch program (.pte), run it N times and print latency statistics as
// JSON -- latency without Python, as ExecuTorch's executor_runner measures it. Built against the
// headers and shared libraries of the executorch wheel (see CMakeLists.txt).
//
//   pte_runner MODEL.pte [--inputs x.npy] [--outputs y.npy] [--runs 50] [--warmup 10]
//              [--threads 1] [--json stats.json] [--etdump prof.etdump [--profile-runs 20]]
//
// Same options and JSON keys as se_edge/runner.py (load_ms, first_ms, warmup, threads, count, min,
// mean, std, p50, p90, p99, peak_rss_mb); executor_runner's spellings --num_executions and
// --cpu_threads are accepted too. --inputs is a float32 .npy of shape (N, ...) (uint8 pixels for a program that takes uint8): every sample is
// run once and the outputs are written to --outputs; the timed runs use the first sample (zeros
// without --inputs). --etdump PATH: after the timed runs (untraced, so the latency is unchanged), the forward
// method is loaded again with ExecuTorch's ETDumpGen event tracer, warmed up (--warmup runs, not recorded) and run
// --profile-runs times; PATH gets the ETDump flatbuffer (one "Execute" block per run: Method::execute, DELEGATE_CALL /
// OPERATOR_CALL and the XNNPACK delegate's per-operator events), for executorch.devtools' Inspector.
// Errors: one line on stderr, exit code 2.
#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>
#include <executorch/runtime/platform/runtime.h>
#if SE_EDGE_ETDUMP
#include <executorch/devtools/etdump/etdump_flatcc.h>
#endif
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
    "[--threads N] [--json FILE] [--etdump FILE [--profile-runs N]]";

// pte_runner's own options, beside the ones runner_cli::parse_args shares with tflite_runner (which has no profiler).
struct ProfileOptions {
  std::string etdump;  // where to write the ETDump; empty: no profiling
  int runs = 20;
};

Options parse_args(int argc, char** argv, ProfileOptions* p) {
  auto rest = runner_cli::take_profile_options(argc, argv, "--etdump", &p->etdump, &p->runs);
  Options o;
  try {
    o = runner_cli::parse_args(static_cast<int>(rest.size()), rest.data(), kUsage);
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    if (what.rfind("unknown option", 0) == 0) throw std::invalid_argument(what + " --etdump --profile-runs");
    throw;
  }
  if (!p->etdump.empty()) {
#if !SE_EDGE_ETDUMP
    throw std::invalid_argument("--etdump: this pte_runner was built without ExecuTorch's ETDump library "
                                "(libexecutorch_etdump); rebuild it against a runtime that ships it");
#endif
    for (const std::string* other : {&o.model, &o.inputs, &o.outputs, &o.json})
      if (p->etdump == *other)
        throw std::invalid_argument("--etdump must differ from the model, --inputs, --outputs and --json: " + p->etdump);
  }
  return o;
}

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

#if SE_EDGE_ETDUMP
// `size` bytes at `data` to `path`, atomically (as runner_cli::write_stats writes the JSON).
void write_file(const std::string& path, const void* data, size_t size) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) throw std::runtime_error("cannot write " + path);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + path);
  }
}

// Loads `module`'s forward method again with an ETDumpGen event tracer (a method's tracer is fixed when it is loaded:
// Program::load_method; the XNNPACK delegate reads it from its execution context on every run), runs it `warmup` times
// unrecorded, then `p.runs` times recorded, and writes the ETDump flatbuffer to p.etdump. Leaves forward unloaded.
void profile(Module& module, const ProfileOptions& p, int warmup, void* sample,
             const std::vector<executorch::aten::SizesType>& sizes, ScalarType type) {
  executorch::etdump::ETDumpGen etdump;  // no buffer: flatcc allocates, get_etdump_data() hands back malloc'd bytes
  module.unload_method("forward");
  Error err = module.load_forward(nullptr, &etdump);
  if (err != Error::Ok) throw std::runtime_error("cannot load forward with the ETDump tracer (" + error_name(err) + ")");
  for (int i = 0; i < warmup; ++i) run_once(module, sample, sizes, type, nullptr);
  etdump.reset();  // drop the load ("Default" block) and the warm-up: the file holds the p.runs recorded runs only
  for (int i = 0; i < p.runs; ++i) run_once(module, sample, sizes, type, nullptr);
  module.unload_method("forward");  // nothing may trace into `etdump` once its data is taken, nor after it is gone
  const size_t blocks = etdump.get_num_blocks();  // Method::execute opens one "Execute" block per run
  executorch::etdump::ETDumpResult result = etdump.get_etdump_data();
  std::unique_ptr<void, decltype(&free)> owned(result.buf, &free);  // as executor_runner frees it
  if (result.buf == nullptr || result.size == 0 || blocks != static_cast<size_t>(p.runs))
    throw std::runtime_error("--etdump: the ExecuTorch runtime recorded " + std::to_string(blocks) + " of " +
                             std::to_string(p.runs) + " runs (libexecutorch built without ET_EVENT_TRACER_ENABLED?)");
  write_file(p.etdump, result.buf, result.size);
}
#endif

int run(const Options& o, const ProfileOptions& p) {
  executorch::runtime::runtime_init();
  auto* pool = executorch::extension::threadpool::get_threadpool();
  if (pool) pool->_unsafe_reset_threadpool(static_cast<uint32_t>(o.threads));

  if (!std::ifstream(o.model).good()) throw std::runtime_error("model not found: " + o.model);
  if (!p.etdump.empty()) {  // fail before the runs, not after them, where the ETDump cannot be written
    const std::string probe = p.etdump + ".tmp";
    if (!std::ofstream(probe, std::ios::binary)) throw std::runtime_error("cannot write " + p.etdump);
    std::remove(probe.c_str());
  }
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
  // The statistics (peak_rss_mb too) as they stand after the timed runs, before the profiled ones
  const std::string stats = json_stats(o, load_ms, first_ms, summarize(times), pool ? pool->get_thread_count() : 0);
#if SE_EDGE_ETDUMP
  if (!p.etdump.empty()) profile(*module, p, o.warmup, sample, sizes, type);
#endif
  runner_cli::write_stats(o.json, stats);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    ProfileOptions profile;
    const Options options = parse_args(argc, argv, &profile);
    return run(options, profile);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
}
