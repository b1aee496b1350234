// Checked reads of numbers from untrusted JSON (key files are not
// authenticated; other objects may be damaged). nlohmann's get<int>() on a
// float or an out-of-range integer is undefined behaviour; these throw
// Error(kCorrupt, "<what>: field 'x' ...") instead.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bulwark/base/error.h"

namespace bulwark {

// Returns j[key] as an integer in [lo, hi]; `fallback` if absent and
// `required` is false.
inline int64_t JsonInt(const nlohmann::json& j, const char* key, std::string_view what, bool required = true,
                       int64_t fallback = 0, int64_t lo = std::numeric_limits<int64_t>::min(),
                       int64_t hi = std::numeric_limits<int64_t>::max()) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) throw Error(ErrorCode::kCorrupt, std::string(what) + ": field '" + key + "' is missing");
    return fallback;
  }
  int64_t v;
  if (it->is_number_unsigned()) {
    uint64_t u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw Error(ErrorCode::kCorrupt, std::string(what) + ": field '" + key + "' is out of range");
    v = static_cast<int64_t>(u);
  } else if (it->is_number_integer()) {
    v = it->get<int64_t>();
  } else {
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": field '" + key + "' is not an integer");
  }
  if (v < lo || v > hi) throw Error(ErrorCode::kCorrupt, std::string(what) + ": field '" + key + "' is out of range");
  return v;
}

inline std::string JsonString(const nlohmann::json& j, const char* key, std::string_view what, bool required = true) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) throw Error(ErrorCode::kCorrupt, std::string(what) + ": field '" + key + "' is missing");
    return "";
  }
  if (!it->is_string()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": field '" + key + "' is not a string");
  return it->get<std::string>();
}

}  // namespace bulwark
