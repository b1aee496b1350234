// Fuzzes the ClickHouse source's decoders (source/clickhouse/native.h,
// http.h, schema.h):
//  - NativeValidator accepts or rejects a stream the same way however it is
//    cut into pieces (the first byte picks a split point; the stream is fed
//    whole, in two pieces, and byte by byte for short inputs), rows and
//    blocks agree, and a rejection is Error(kCorrupt);
//  - ParseNativeType returns or says why, for the input read as a type name;
//  - ParseTsv returns or throws Error(kCorrupt);
//  - RewriteDatabases with an identity map changes nothing, and never
//    crashes with a real one.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "bulwark/base/error.h"
#include "bulwark/source/clickhouse/http.h"
#include "bulwark/source/clickhouse/native.h"
#include "bulwark/source/clickhouse/schema.h"

namespace ch = bulwark::source::clickhouse;

namespace {

struct Outcome {
  bool ok = false;
  uint64_t rows = 0, blocks = 0;
  bool operator==(const Outcome&) const = default;
};

// Feeds `in` in pieces: [0, cut), [cut, end) (cut = 0: whole; step: every `step` bytes).
Outcome Validate(std::string_view in, size_t cut, size_t step) {
  ch::NativeValidator v;
  Outcome o;
  try {
    const auto* p = reinterpret_cast<const uint8_t*>(in.data());
    if (step > 0) {
      for (size_t i = 0; i < in.size(); i += step) v.Feed(p + i, std::min(step, in.size() - i));
    } else {
      v.Feed(p, cut);
      v.Feed(p + cut, in.size() - cut);
    }
    v.Finish();
    o.ok = true;
  } catch (const bulwark::Error& e) {
    if (e.code() != bulwark::ErrorCode::kCorrupt) std::abort();
  }
  o.rows = v.rows();
  o.blocks = v.blocks();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  const Outcome whole = Validate(in, in.size(), 0);
  const size_t cut = in.empty() ? 0 : data[0] % (in.size() + 1);
  const Outcome split = Validate(in, cut, 0);
  // A failure ends the stream where it is found: the rows before it count the same way.
  if (whole.ok != split.ok) std::abort();
  if (whole.ok && !(whole == split)) std::abort();
  if (in.size() <= 4096) {
    const Outcome bytes = Validate(in, 0, 1);
    if (bytes.ok != whole.ok || (whole.ok && !(bytes == whole))) std::abort();
  }

  std::string why;
  auto t = ch::ParseNativeType(in, &why);
  if (!t && why.empty()) std::abort();

  try {
    auto rows = ch::ParseTsv(std::string(in));
    (void)rows;
  } catch (const bulwark::Error& e) {
    if (e.code() != bulwark::ErrorCode::kCorrupt) std::abort();
  }

  const std::string sql(in);
  if (ch::RewriteDatabases(sql, {{"app", "app"}}) != sql) std::abort();
  (void)ch::RewriteDatabases(sql, {{"app", "new db"}, {"x", "app"}});
  (void)ch::IfNotExists(sql);
  (void)ch::EscapeForFileName(in);
  return 0;
}
