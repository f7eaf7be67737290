#include "metrics/registry.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace vpcguard::metrics {
namespace {

const char* typeName(Type t) {
  switch (t) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

void appendLabels(std::string& out, const Labels& labels, const char* extra_name = nullptr,
                  const std::string& extra_value = {}) {
  if (labels.empty() && extra_name == nullptr) {
    return;
  }
  out += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) {
      out += ',';
    }
    first = false;
    out += name;
    out += "=\"";
    out += escapeLabelValue(value);
    out += '"';
  }
  if (extra_name != nullptr) {
    if (!first) {
      out += ',';
    }
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

void appendSample(std::string& out, const std::string& name, const Labels& labels, double value,
                  const char* extra_name = nullptr, const std::string& extra_value = {}) {
  out += name;
  appendLabels(out, labels, extra_name, extra_value);
  out += ' ';
  out += formatValue(value);
  out += '\n';
}

}  // namespace

std::string escapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string escapeHelp(const std::string& help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string formatValue(double value) {
  if (std::isnan(value)) {
    return "NaN";
  }
  if (std::isinf(value)) {
    return value > 0 ? "+Inf" : "-Inf";
  }
  // Integral values (counts) print as integers, exactly, up to 2^53.
  if (std::fabs(value) < 9007199254740992.0 && value == std::trunc(value)) {
    return fmt::format("{}", static_cast<int64_t>(value));
  }
  return fmt::format("{}", value);
}

void Registry::declare(const std::string& name, const std::string& help, Type type,
                       std::vector<double> buckets) {
  if (families_.count(name) != 0) {
    return;
  }
  Family f;
  f.help = help;
  f.type = type;
  if (type == Type::kHistogram) {
    std::sort(buckets.begin(), buckets.end());
    buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
    buckets.erase(std::remove_if(buckets.begin(), buckets.end(),
                                 [](double b) { return std::isinf(b) || std::isnan(b); }),
                  buckets.end());
    f.buckets = std::move(buckets);
  }
  families_.emplace(name, std::move(f));
}

Registry::Family* Registry::family(const std::string& name) {
  auto it = families_.find(name);
  // Using an undeclared name is the owner's bug: ignored in release builds.
  assert(it != families_.end());
  return it == families_.end() ? nullptr : &it->second;
}

void Registry::add(const std::string& name, const Labels& labels, double by) {
  Family* f = family(name);
  if (f == nullptr || f->type == Type::kHistogram) {
    return;
  }
  if (f->type == Type::kCounter && by < 0) {
    return;  // counters never go down
  }
  f->series[labels].value += by;
}

void Registry::set(const std::string& name, const Labels& labels, double value) {
  Family* f = family(name);
  if (f == nullptr || f->type == Type::kHistogram) {
    return;
  }
  f->series[labels].value = value;
}

void Registry::observe(const std::string& name, const Labels& labels, double value) {
  Family* f = family(name);
  if (f == nullptr || f->type != Type::kHistogram || std::isnan(value)) {
    return;
  }
  Series& s = f->series[labels];
  s.bucket_counts.resize(f->buckets.size());
  const auto it = std::lower_bound(f->buckets.begin(), f->buckets.end(), value);
  if (it != f->buckets.end()) {
    ++s.bucket_counts[static_cast<size_t>(it - f->buckets.begin())];
  }
  ++s.count;
  s.sum += value;
}

void Registry::clear(const std::string& name) {
  if (Family* f = family(name)) {
    f->series.clear();
  }
}

double Registry::value(const std::string& name, const Labels& labels) const {
  auto it = families_.find(name);
  if (it == families_.end()) {
    return 0;
  }
  auto s = it->second.series.find(labels);
  return s == it->second.series.end() ? 0 : s->second.value;
}

std::string Registry::render() const {
  std::string out;
  for (const auto& [name, f] : families_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escapeHelp(f.help), name,
                       typeName(f.type));
    for (const auto& [labels, s] : f.series) {
      if (f.type != Type::kHistogram) {
        appendSample(out, name, labels, s.value);
        continue;
      }
      // Buckets are cumulative in the format; an observation above every bound is only in +Inf.
      uint64_t cumulative = 0;
      for (size_t i = 0; i < f.buckets.size(); ++i) {
        cumulative += i < s.bucket_counts.size() ? s.bucket_counts[i] : 0;
        appendSample(out, name + "_bucket", labels, static_cast<double>(cumulative), "le",
                     formatValue(f.buckets[i]));
      }
      appendSample(out, name + "_bucket", labels, static_cast<double>(s.count), "le", "+Inf");
      appendSample(out, name + "_sum", labels, s.sum);
      appendSample(out, name + "_count", labels, static_cast<double>(s.count));
    }
  }
  return out;
}

}  // namespace vpcguard::metrics
