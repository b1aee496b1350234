// Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): what
// /metrics serves and what is pushed to a Pushgateway.
//
//   # HELP <name> <help, '\' and newline escaped as \\ and \n>
//   # TYPE <name> counter|gauge|untyped
//   <name>{<label>="<value, '\' '"' newline escaped as \\ \" \n>",...} <value>
//
// Families are written in the order given, each with its HELP and TYPE even
// when it has no samples (declared but not yet filled, e.g. drill metrics
// before the first drill). Values: integers print without exponent or
// fraction when exact (up to 2^53), others in the shortest form that reads
// back to the same double; NaN, +Inf, -Inf as "NaN", "+Inf", "-Inf". No
// timestamps are written (Prometheus stamps the scrape).
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bulwark::metrics {

enum class Type { kCounter, kGauge, kUntyped };

struct Sample {
  std::vector<std::pair<std::string, std::string>> labels;  // name -> value, in output order
  double value = 0;
};

struct Family {
  std::string name;  // [a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total
  std::string help;
  Type type = Type::kGauge;
  std::vector<Sample> samples;
};

// The exposition text of `families` (ends with a newline when non-empty).
std::string Render(const std::vector<Family>& families);

// `v` escaped for a label value: \ -> \\, " -> \", newline -> \n.
std::string EscapeLabelValue(std::string_view v);
// `v` escaped for a HELP line: \ -> \\, newline -> \n.
std::string EscapeHelp(std::string_view v);
// A sample value as described above.
std::string FormatValue(double v);

// The Content-Type of the format.
inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace bulwark::metrics
