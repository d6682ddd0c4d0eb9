// Latency statistics in the conventions of se_edge's Python runner (runner.summarize): min, mean,
// population std, and percentiles interpolated linearly between ranks, as numpy.percentile does.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

struct LatencyStats {
  int count = 0;
  double min = 0, mean = 0, std = 0, p50 = 0, p90 = 0, p99 = 0;
};

inline double percentile(const std::vector<double>& sorted, double q) {
  const double rank = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - static_cast<double>(lo));
}

inline LatencyStats summarize(std::vector<double> times_ms) {
  LatencyStats s;
  if (times_ms.empty()) return s;
  std::sort(times_ms.begin(), times_ms.end());
  s.count = static_cast<int>(times_ms.size());
  s.min = times_ms.front();
  double sum = 0;
  for (double t : times_ms) sum += t;
  s.mean = sum / s.count;
  double var = 0;
  for (double t : times_ms) var += (t - s.mean) * (t - s.mean);
  s.std = std::sqrt(var / s.count);
  s.p50 = percentile(times_ms, 50);
  s.p90 = percentile(times_ms, 90);
  s.p99 = percentile(times_ms, 99);
  return s;
}
