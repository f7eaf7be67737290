#pragma once
// A registry of Prometheus metrics rendered in the text exposition format, version 0.0.4.
//
// Design: families (one name, HELP, TYPE) hold series keyed by their label set. The owner
// declares a family once, then updates series by labels; nothing is thread-safe (one loop owns
// it). render() is deterministic: families sorted by name, series by their labels (names and
// values), labels within a series by name. A counter may also be set(): an owner that already
// keeps a monotonic count mirrors it instead of counting twice.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace vpcguard::metrics {

enum class Type { kCounter, kGauge, kHistogram };

// Label name -> value. Names must match [a-zA-Z_][a-zA-Z0-9_]* (not checked at run time: they
// are the owner's constants); values are any UTF-8 and are escaped on output.
using Labels = std::map<std::string, std::string>;

class Registry {
 public:
  // Declares a family. For histograms, `buckets` are the upper bounds (sorted, without +Inf,
  // which is implicit). Declaring an existing name again changes nothing.
  void declare(const std::string& name, const std::string& help, Type type,
               std::vector<double> buckets = {});
  // Counter: adds `by` (>= 0). Gauge: adds `by` (may be negative).
  void add(const std::string& name, const Labels& labels = {}, double by = 1);
  // Gauge, or a counter mirrored from the owner's own count.
  void set(const std::string& name, const Labels& labels, double value);
  void set(const std::string& name, double value) { set(name, Labels{}, value); }
  // Histogram: one observation.
  void observe(const std::string& name, const Labels& labels, double value);
  // Removes every series of a family (gauges rebuilt from scratch before a scrape).
  void clear(const std::string& name);
  // The value of a counter or gauge series (0 when absent); for tests and owners.
  [[nodiscard]] double value(const std::string& name, const Labels& labels = {}) const;
  [[nodiscard]] std::string render() const;

 private:
  struct Series {
    double value = 0;
    std::vector<uint64_t> bucket_counts;  // histogram: per bucket (not cumulative)
    uint64_t count = 0;
    double sum = 0;
  };
  struct Family {
    std::string help;
    Type type = Type::kCounter;
    std::vector<double> buckets;
    std::map<Labels, Series> series;
  };
  Family* family(const std::string& name);
  std::map<std::string, Family> families_;
};

// Escaping of the text format: label values (backslash, double quote, line feed) and HELP text
// (backslash, line feed).
[[nodiscard]] std::string escapeLabelValue(const std::string& value);
[[nodiscard]] std::string escapeHelp(const std::string& help);
// A sample value as the format writes it: integers without a fraction, +Inf, -Inf, NaN.
[[nodiscard]] std::string formatValue(double value);

}  // namespace vpcguard::metrics
