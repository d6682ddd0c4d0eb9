// tflite_runner: load a .tflite with LiteRT's CompiledModel C API (libLiteRt.so, as the ai-edge-litert wheel
// ships it) on the CPU accelerator -- XNNPACK, with --threads threads -- run it N times and print latency
// statistics as JSON: latency and outputs without Python, beside native/pte_runner for the .pte.
//
//   tflite_runner MODEL.tflite [--inputs x.npy] [--outputs y.npy] [--runs 50] [--warmup 10]
//                 [--threads 1] [--json stats.json] [--profile profile.json [--profile-runs 20]]
//
// The command line, .npy files and JSON keys are pte_runner's (and se_edge/runner.py's). --inputs is a float32
// .npy of shape (N, ...) -- the run's normalised images, laid out NCHW as PyTorch has them; an NHWC input is fed
// transposed -- or a uint8 .npy of pixels for a file that takes uint8. As runner.py does, a float sample for an
// int8 or uint8 input is quantised with the input's scale and zero point (times the float32 reciprocal, ties to
// even, as XNNPACK quantises), and an int8/uint8 output is dequantised: --outputs is float32 (N, ...).
// Timing: each run is LiteRtRunCompiledModel alone (the input written once before); load_ms is model load and
// compilation, first_ms the first run. Errors: one line on stderr, exit code 2.
// --profile: after the timed runs, the model compiled again with LiteRT's profiler attached (runtime option
// enable_profiling; attached, it also switches XNNPACK's per-operator timing on, so the timed runs never use it),
// warmed up, then --profile-runs runs with the profiler started, each timed around LiteRtRunCompiledModel:
// per-event average ms per run as JSON (see profile()).
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <algorithm>
#include <map>
#include <tuple>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "latency_stats.h"
#include "litert_c_api.h"
#include "npy.h"
#include "runner_cli.h"

using runner_cli::Clock;
using runner_cli::ms_since;
using runner_cli::Options;

namespace {

const char* kUsage =
    "usage: tflite_runner MODEL.tflite [--inputs x.npy] [--outputs y.npy] [--runs N] [--warmup N] "
    "[--threads N] [--json FILE] [--profile FILE [--profile-runs N]]";

const char* status_name(LiteRtStatus s) {  // libLiteRt.so exports no LiteRtGetStatusString
  switch (s) {
    case kLiteRtStatusErrorInvalidArgument: return "invalid argument";
    case kLiteRtStatusErrorMemoryAllocationFailure: return "memory allocation failure";
    case kLiteRtStatusErrorRuntimeFailure: return "runtime failure";
    case kLiteRtStatusErrorUnsupported: return "unsupported";
    case kLiteRtStatusErrorNotFound: return "not found";
    case kLiteRtStatusErrorFileIO: return "file I/O error";
    case kLiteRtStatusErrorInvalidFlatbuffer: return "not a valid TFLite flatbuffer";
    case kLiteRtStatusErrorCompilation: return "compilation failed";
    default: return "error";
  }
}

void check(LiteRtStatus s, const std::string& what) {
  if (s != kLiteRtStatusOk)
    throw std::runtime_error(what + ": " + status_name(s) + " (LiteRtStatus " + std::to_string(static_cast<int>(s)) + ")");
}

struct TensorInfo {
  LiteRtRankedTensorType type{};
  float scale = 0;
  int64_t zero_point = 0;
  bool quantized = false;
  size_t elements() const {
    size_t n = 1;
    for (unsigned d = 0; d < type.layout.rank; ++d) n *= static_cast<size_t>(type.layout.dimensions[d]);
    return n;
  }
  std::vector<int64_t> dims() const {
    return std::vector<int64_t>(type.layout.dimensions, type.layout.dimensions + type.layout.rank);
  }
};

TensorInfo tensor_info(LiteRtTensor t, const std::string& what) {
  TensorInfo info;
  LiteRtTensorTypeId id;
  check(LiteRtGetTensorTypeId(t, &id), what);
  if (id != kLiteRtRankedTensorType) throw std::runtime_error(what + " has no fixed shape");
  check(LiteRtGetRankedTensorType(t, &info.type), what);
  for (unsigned d = 0; d < info.type.layout.rank; ++d)
    if (info.type.layout.dimensions[d] < 1) throw std::runtime_error(what + " has a dynamic dimension");
  LiteRtQuantizationTypeId q;
  check(LiteRtGetQuantizationTypeId(t, &q), what);
  if (q == kLiteRtQuantizationPerTensor) {
    LiteRtQuantizationPerTensor p{};
    check(LiteRtGetPerTensorQuantization(t, &p), what);
    info.scale = p.scale;
    info.zero_point = p.zero_point;
    info.quantized = true;
  }
  const auto e = info.type.element_type;
  if (e != kLiteRtElementTypeFloat32 && e != kLiteRtElementTypeInt8 && e != kLiteRtElementTypeUInt8)
    throw std::runtime_error(what + " is neither float32, int8 nor uint8");
  if (e != kLiteRtElementTypeFloat32 && !info.quantized) throw std::runtime_error(what + " is an integer tensor without a scale");
  return info;
}

void free_payload(void* p) { std::free(p); }

// One model compiled for the CPU accelerator, with its input and output buffers; with `profiling`, LiteRT's
// profiler attached (owned by the compiled model).
struct Compiled {
  LiteRtEnvironment env = nullptr;
  LiteRtModel model = nullptr;
  LiteRtCompiledModel compiled = nullptr;
  LiteRtTensorBuffer input = nullptr, output = nullptr;
  LiteRtProfiler profiler = nullptr;
  TensorInfo in, out;

  Compiled(const std::string& path, int threads, bool profiling = false) {
    // Errors only, and the CPU accelerator only (no probing for GPU or NPU libraries a board does not have).
    LiteRtEnvOption options[2] = {};
    options[0].tag = kLiteRtEnvOptionTagMinLoggerSeverity;
    options[0].value.type = 2;  // kLiteRtAnyTypeInt
    options[0].value.int_value = 3;  // error
    options[1].tag = kLiteRtEnvOptionTagAutoRegisterAccelerators;
    options[1].value.type = 2;
    options[1].value.int_value = kLiteRtHwAcceleratorCpu;
    check(LiteRtCreateEnvironment(2, options, &env), "LiteRT environment");
    if (LiteRtCreateModelFromFile(env, path.c_str(), &model) != kLiteRtStatusOk)
      throw std::runtime_error("cannot load " + path + " as a TFLite model");
    LiteRtSignature sig;
    check(LiteRtGetModelSignature(model, 0, &sig), path + ": signature 0");
    LiteRtParamIndex n_in = 0, n_out = 0;
    check(LiteRtGetNumSignatureInputs(sig, &n_in), path);
    check(LiteRtGetNumSignatureOutputs(sig, &n_out), path);
    if (n_in != 1 || n_out < 1) throw std::runtime_error(path + ": this runner takes models of one input");
    LiteRtTensor t;
    check(LiteRtGetSignatureInputTensorByIndex(sig, 0, &t), path);
    in = tensor_info(t, path + ": input 0");
    check(LiteRtGetSignatureOutputTensorByIndex(sig, 0, &t), path);
    out = tensor_info(t, path + ": output 0");

    LiteRtOptions opts;
    check(LiteRtCreateOptions(&opts), "LiteRT options");
    check(LiteRtSetOptionsHardwareAccelerators(opts, kLiteRtHwAcceleratorCpu), "CPU accelerator");
    // The CPU accelerator's XNNPACK settings are a TOML payload ("xnnpack", as the CPU options helpers write it,
    // which the .so does not export): without num_threads XNNPACK runs on the calling thread only.
    const std::string toml = "num_threads = " + std::to_string(threads) + "\n";
    LiteRtOpaqueOptions xnnpack;
    check(LiteRtCreateOpaqueOptions("xnnpack", strdup(toml.c_str()), free_payload, &xnnpack), "XNNPACK options");
    check(LiteRtAddOpaqueOptions(opts, xnnpack), "XNNPACK options");
    if (profiling) {
      // The runtime options' TOML payload, as LrtGetOpaqueRuntimeOptionsData writes it (not exported either).
      LiteRtOpaqueOptions runtime;
      check(LiteRtCreateOpaqueOptions("runtime_options_string", strdup("enable_profiling = true\n"), free_payload,
                                      &runtime), "runtime options");
      check(LiteRtAddOpaqueOptions(opts, runtime), "runtime options");
    }
    LiteRtStatus made = LiteRtCreateCompiledModel(env, model, opts, &compiled);
    LiteRtDestroyOptions(opts);
    check(made, path + ": compile for the CPU");
    if (profiling) {
      check(LiteRtCompiledModelGetProfiler(compiled, &profiler), "profiler");
      if (profiler == nullptr) throw std::runtime_error("LiteRT compiled the model without a profiler");
    }

    LiteRtTensorBufferRequirements req;
    check(LiteRtGetCompiledModelInputBufferRequirements(compiled, 0, 0, &req), "input buffer");
    check(LiteRtCreateManagedTensorBufferFromRequirements(env, &in.type, req, &input), "input buffer");
    check(LiteRtGetCompiledModelOutputBufferRequirements(compiled, 0, 0, &req), "output buffer");
    check(LiteRtCreateManagedTensorBufferFromRequirements(env, &out.type, req, &output), "output buffer");
  }

  ~Compiled() {
    if (input) LiteRtDestroyTensorBuffer(input);
    if (output) LiteRtDestroyTensorBuffer(output);
    if (compiled) LiteRtDestroyCompiledModel(compiled);
    if (model) LiteRtDestroyModel(model);
    if (env) LiteRtDestroyEnvironment(env);
  }

  // Writes one sample (floats in the model's layout; pixel values where the input is uint8 and `pixels`).
  void write(const float* sample, bool pixels) {
    void* p = nullptr;
    check(LiteRtLockTensorBuffer(input, &p, kLiteRtTensorBufferLockModeWrite), "write input");
    const size_t n = in.elements();
    const auto e = in.type.element_type;
    if (e == kLiteRtElementTypeFloat32) {
      std::memcpy(p, sample, n * sizeof(float));
    } else if (e == kLiteRtElementTypeUInt8 && pixels) {
      auto* q = static_cast<uint8_t*>(p);
      for (size_t i = 0; i < n; ++i) q[i] = static_cast<uint8_t>(sample[i]);
    } else {  // quantise as runner.py and XNNPACK do: x * float32(1 / scale), rounded half to even
      const float inverse = 1.0f / in.scale;
      const float lo = e == kLiteRtElementTypeInt8 ? -128.0f : 0.0f, hi = e == kLiteRtElementTypeInt8 ? 127.0f : 255.0f;
      for (size_t i = 0; i < n; ++i) {
        float v = std::nearbyint(sample[i] * inverse) + static_cast<float>(in.zero_point);
        v = std::fmin(hi, std::fmax(lo, v));
        if (e == kLiteRtElementTypeInt8) static_cast<int8_t*>(p)[i] = static_cast<int8_t>(v);
        else static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(v);
      }
    }
    check(LiteRtUnlockTensorBuffer(input), "write input");
  }

  void run() { check(LiteRtRunCompiledModel(compiled, 0, 1, &input, 1, &output), "run"); }

  std::vector<float> read() {
    void* p = nullptr;
    check(LiteRtLockTensorBuffer(output, &p, kLiteRtTensorBufferLockModeRead), "read output");
    const size_t n = out.elements();
    std::vector<float> y(n);
    const auto e = out.type.element_type;
    for (size_t i = 0; i < n; ++i) {
      if (e == kLiteRtElementTypeFloat32) y[i] = static_cast<const float*>(p)[i];
      else if (e == kLiteRtElementTypeInt8) y[i] = (static_cast<const int8_t*>(p)[i] - static_cast<float>(out.zero_point)) * out.scale;
      else y[i] = (static_cast<const uint8_t*>(p)[i] - static_cast<float>(out.zero_point)) * out.scale;
    }
    check(LiteRtUnlockTensorBuffer(output), "read output");
    return y;
  }
};

// (N, C, H, W) samples for an (1, H, W, C) input: transposed, as runner.py's _to_layout does.
std::vector<float> to_layout(const npy::Array& x, const std::vector<int64_t>& want) {
  const auto& s = x.shape;
  if (s.size() != want.size()) throw std::runtime_error("inputs have rank " + std::to_string(s.size()) + ", the model's input " + std::to_string(want.size()));
  if (std::equal(s.begin() + 1, s.end(), want.begin() + 1)) return x.data;
  if (s.size() == 4 && s[2] == want[1] && s[3] == want[2] && s[1] == want[3]) {
    const int64_t n = s[0], c = s[1], h = s[2], w = s[3];
    std::vector<float> out(x.data.size());
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < c; ++k)
        for (int64_t y = 0; y < h; ++y)
          for (int64_t z = 0; z < w; ++z)
            out[((i * h + y) * w + z) * c + k] = x.data[((i * c + k) * h + y) * w + z];
    return out;
  }
  std::ostringstream m;
  m << "inputs of shape (";
  for (auto d : s) m << d << ",";
  m << ") do not fit the model's input (";
  for (auto d : want) m << d << ",";
  m << ")";
  throw std::runtime_error(m.str());
}

std::string json_stats(const Options& o, double load_ms, double first_ms, const LatencyStats& s) {
  std::ostringstream j;
  j.precision(9);
  j << "{\n  \"load_ms\": " << load_ms << ",\n  \"first_ms\": " << first_ms << ",\n  \"warmup\": " << o.warmup
    << ",\n  \"threads\": " << o.threads << ",\n  \"runtime\": \"litert-native\",\n  \"runtime_version\": \"" << runner_cli::json_escape(SE_EDGE_RUNTIME_VERSION) << "\",\n  \"device\": " << runner_cli::device_json() << ",\n  \"count\": " << s.count
    << ",\n  \"min\": " << s.min << ",\n  \"mean\": " << s.mean << ",\n  \"std\": " << s.std << ",\n  \"p50\": " << s.p50
    << ",\n  \"p90\": " << s.p90 << ",\n  \"p99\": " << s.p99 << ",\n  \"peak_rss_mb\": " << runner_cli::peak_rss_mb()
    << ",\n  \"model\": \"" << runner_cli::json_name(o.model) << "\"\n}\n";
  return j.str();
}

// --profile FILE and --profile-runs N, which runner_cli::parse_args (shared with pte_runner) does not know.
struct ProfileArgs {
  std::string path;
  int runs = 20;
};

const char* event_type_name(int t) {  // an int: a value read from the library, checked before it is an enum
  switch (t) {
    case DEFAULT: return "default";
    case OPERATOR_INVOKE_EVENT: return "operator";
    case DELEGATE_OPERATOR_INVOKE_EVENT: return "delegate_operator";
    case DELEGATE_PROFILED_OPERATOR_INVOKE_EVENT: return "delegate_profiled_operator";
    case GENERAL_RUNTIME_INSTRUMENTATION_EVENT: return "runtime_instrumentation";
    case TELEMETRY_EVENT: return "telemetry";
    case TELEMETRY_REPORT_SETTINGS: return "telemetry_settings";
    case TELEMETRY_DELEGATE_EVENT: return "telemetry_delegate";
    case TELEMETRY_DELEGATE_REPORT_SETTINGS: return "telemetry_delegate_settings";
  }
  return nullptr;
}

const char* event_source_name(int s) {
  switch (s) {
    case LITERT: return "litert";
    case TFLITE_INTERPRETER: return "tflite_interpreter";
    case TFLITE_DELEGATE: return "tflite_delegate";
  }
  return nullptr;
}

bool is_operator(LiteRtProfilerEventType t) {
  return t == OPERATOR_INVOKE_EVENT || t == DELEGATE_OPERATOR_INVOKE_EVENT || t == DELEGATE_PROFILED_OPERATOR_INVOKE_EVENT;
}

// One event of a run, summed over the profiled runs. An event is its tag, type, operator index (operator events)
// and its occurrence in the run: XNNPACK names many operators alike ("Convolution (NHWC, QC8) IGEMM"). The source
// is LiteRT's: it records one only for events begun and ended, so XNNPACK's operators (added with their elapsed
// time, type delegate_profiled_operator) read "litert" too.
struct EventTotal {
  std::string name;
  LiteRtProfilerEventType type;
  ProfiledEventSource source;
  uint64_t node;
  uint64_t us = 0;
  int count = 0;
};

// The events of one profiled run (the profiler started before, stopped after it), added to `totals`.
void collect_events(LiteRtProfiler profiler, std::vector<EventTotal>& totals,
                    std::map<std::tuple<std::string, int, uint64_t, int>, size_t>& index) {
  int n = -1;
  check(LiteRtGetNumProfilerEvents(profiler, &n), "profiler events");
  if (n <= 0) throw std::runtime_error("the profiler recorded no events in a run (" + std::to_string(n) + ")");
  // (the profiler's buffer holds 512 * 1024 events, the last ones dropped beyond)
  if (n >= 512 * 1024) throw std::runtime_error("the profiler's event buffer is full: events were dropped");
  std::vector<ProfiledEventData> events(static_cast<size_t>(n));
  check(LiteRtGetProfilerEvents(profiler, n, events.data()), "profiler events");
  std::map<std::tuple<std::string, int, uint64_t>, int> seen;  // occurrences in this run
  for (int i = 0; i < n; ++i) {
    const ProfiledEventData& e = events[i];
    if (e.tag == nullptr) throw std::runtime_error("profiler event " + std::to_string(i) + " has no tag");
    if (!event_type_name(static_cast<int>(e.event_type)) || !event_source_name(static_cast<int>(e.event_source)))
      throw std::runtime_error("profiler event " + std::to_string(i) + " has type " +
                               std::to_string(static_cast<int>(e.event_type)) + ", source " +
                               std::to_string(static_cast<int>(e.event_source)) + ": not ProfiledEventData as declared");
    // Telemetry events carry a status or settings where the others carry the elapsed time (the interpreter's
    // "Invoke" status, (1 << 32) for Ok): no times, left out.
    if (e.event_type & (TELEMETRY_EVENT | TELEMETRY_REPORT_SETTINGS | TELEMETRY_DELEGATE_EVENT |
                        TELEMETRY_DELEGATE_REPORT_SETTINGS))
      continue;
    if (e.elapsed_time_us > 3600ull * 1000 * 1000)
      throw std::runtime_error(std::string("profiler event ") + e.tag + " took " + std::to_string(e.elapsed_time_us) + " us");
    const uint64_t node = is_operator(e.event_type) ? e.event_metadata1 : 0;
    const int type = static_cast<int>(e.event_type);
    const int occurrence = seen[{e.tag, type, node}]++;
    auto [it, added] = index.try_emplace({e.tag, type, node, occurrence}, totals.size());
    if (added) totals.push_back({e.tag, e.event_type, e.event_source, node});
    totals[it->second].us += e.elapsed_time_us;
    totals[it->second].count += 1;
  }
}

// --profile: the model compiled with the profiler attached and warmed up (no events), then p.runs runs each with the
// profiler started; JSON with each event's average ms per run (ms = its summed elapsed time / runs; count = how
// often it was recorded in all runs), in order of first occurrence, and invoke_ms, the average
// LiteRtRunCompiledModel of those runs. operator_ms sums the operator-wise events, as TFLite's benchmark_model
// does: interpreter operators and delegate-profiled operators (a delegate's node and its internal operators are
// never both).
std::string profile(const Options& o, const ProfileArgs& p, const std::vector<float>& sample, bool pixels) {
  Compiled model(o.model, o.threads, /*profiling=*/true);
  model.write(sample.data(), pixels);
  for (int i = 0; i < std::max(1, o.warmup); ++i) model.run();
  std::vector<EventTotal> totals;
  std::map<std::tuple<std::string, int, uint64_t, int>, size_t> index;
  double invoke_ms = 0;
  for (int r = 0; r < p.runs; ++r) {
    check(LiteRtStartProfiler(model.profiler), "start profiler");  // also empties its event buffer
    const auto start = Clock::now();
    model.run();
    invoke_ms += ms_since(start);
    check(LiteRtStopProfiler(model.profiler), "stop profiler");
    collect_events(model.profiler, totals, index);
    check(LiteRtResetProfiler(model.profiler), "reset profiler");
  }
  double operator_ms = 0;
  std::ostringstream j;
  j.precision(6);
  j << "{\n  \"model\": \"" << runner_cli::json_name(o.model) << "\",\n  \"threads\": " << o.threads
    << ",\n  \"runs\": " << p.runs << ",\n  \"events\": [";
  for (size_t i = 0; i < totals.size(); ++i) {
    const EventTotal& t = totals[i];
    const double ms = t.us / 1000.0 / p.runs;
    if (t.type == OPERATOR_INVOKE_EVENT || t.type == DELEGATE_PROFILED_OPERATOR_INVOKE_EVENT) operator_ms += ms;
    j << (i ? "," : "") << "\n    {\"name\": \"" << runner_cli::json_escape(t.name) << "\", \"type\": \""
      << event_type_name(t.type) << "\", \"source\": \"" << event_source_name(t.source) << "\"";
    if (is_operator(t.type)) j << ", \"node\": " << t.node;
    j << ", \"ms\": " << ms << ", \"count\": " << t.count << "}";
  }
  j << "\n  ],\n  \"operator_ms\": " << operator_ms << ",\n  \"invoke_ms\": " << invoke_ms / p.runs << "\n}\n";
  return j.str();
}

int run(const Options& o, const ProfileArgs& p) {
  if (!p.path.empty() && p.path == o.json) throw std::invalid_argument("--profile and --json name the same file");
  if (!std::ifstream(o.model).good()) throw std::runtime_error("model not found: " + o.model);
  auto start = Clock::now();
  auto model = std::make_unique<Compiled>(o.model, o.threads);
  double load_ms = ms_since(start);
  const auto want = model->in.dims();
  const size_t per_sample = model->in.elements();

  npy::Array x;
  std::vector<float> data;
  if (!o.inputs.empty()) {
    x = npy::load(o.inputs);
    size_t n = x.shape.empty() ? 0 : static_cast<size_t>(x.shape[0]);
    if (n == 0 || x.data.size() != n * per_sample)
      throw std::runtime_error(o.inputs + ": expected (N, ...) samples of " + std::to_string(per_sample) + " values each");
    data = to_layout(x, want);
  } else {
    x.shape = {1};
    data.assign(per_sample, 0.0f);
  }
  if (!o.outputs.empty()) {
    npy::Array y;
    for (int64_t i = 0; i < x.shape[0]; ++i) {
      model->write(data.data() + i * per_sample, x.uint8);
      model->run();
      auto out = model->read();
      y.data.insert(y.data.end(), out.begin(), out.end());
    }
    const auto out_dims = model->out.dims();
    y.shape = {x.shape[0]};  // (N, *out_shape[1:]), as runner.predict stacks batch-1 outputs
    y.shape.insert(y.shape.end(), out_dims.begin() + (out_dims.empty() ? 0 : 1), out_dims.end());
    npy::save(o.outputs, y);
    model.reset();  // as runner.benchmark does: load and first run timed on a fresh model
    start = Clock::now();
    model = std::make_unique<Compiled>(o.model, o.threads);
    load_ms = ms_since(start);
  }

  model->write(data.data(), x.uint8);  // once: the timed runs are the invoke alone
  start = Clock::now();
  model->run();
  const double first_ms = ms_since(start);
  for (int i = 0; i < o.warmup; ++i) model->run();
  std::vector<double> times;
  times.reserve(o.runs);
  for (int i = 0; i < o.runs; ++i) {
    start = Clock::now();
    model->run();
    times.push_back(ms_since(start));
  }
  const std::string stats = json_stats(o, load_ms, first_ms, summarize(times));  // peak RSS of the timed model
  if (!p.path.empty()) {
    model.reset();
    runner_cli::write_stats(p.path, profile(o, p, std::vector<float>(data.begin(), data.begin() + per_sample), x.uint8));
  }
  runner_cli::write_stats(o.json, stats);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    ProfileArgs profile;
    std::vector<char*> rest = runner_cli::take_profile_options(argc, argv, "--profile", &profile.path, &profile.runs);
    Options options;
    try {
      options = runner_cli::parse_args(static_cast<int>(rest.size()), rest.data(), kUsage);
    } catch (const std::invalid_argument& e) {  // parse_args lists the options it knows
      std::string what = e.what();
      if (what.find("; valid: ") != std::string::npos) what += " --profile --profile-runs";
      throw std::invalid_argument(what);
    }
    return run(options, profile);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
}
