// Fuzzes the audit record decoder (AuditRecord::Decode: JSON), the opening of
// sealed audit objects under the fixed fuzzing key, the record-name parser
// (AuditRef::Parse) and argument redaction (RedactText). Every input is tried
// each way; each must succeed or throw bulwark::Error:
//   1. as a record's JSON payload: a decoded record re-encodes and re-decodes
//      to the same JSON;
//   2. as a sealed audit object (OpenObject, type 9), then Decode;
//   3. as an object name: a parsed name prints back to itself (with prefix);
//   4. as text to redact: redaction never throws and is idempotent.
// Seeds: fuzz/corpus/audit_fuzz (fuzz/make_seeds.cc).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "bulwark/base/error.h"
#include "bulwark/repo/audit.h"
#include "bulwark/repo/format.h"
#include "fuzz_key.h"

using namespace bulwark;

namespace {

void DecodeRecord(ByteSpan json) {
  repo::AuditRecord r;
  try {
    r = repo::AuditRecord::Decode(json, "fuzz audit record");
  } catch (const Error&) {
    return;
  }
  // Not caught from here on.
  repo::AuditRecord back = repo::AuditRecord::Decode(r.Encode(), "fuzz audit record re-decode");
  if (back.ToJson() != r.ToJson()) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteSpan in(data, size);
  DecodeRecord(in);
  static const crypto::Aead aead(fuzz::Master().enc);
  try {
    DecodeRecord(repo::OpenObject(aead, repo::ObjectType::kAudit, in, "fuzz audit object"));
  } catch (const Error&) {
  }
  std::string_view text = AsString(in);
  if (auto ref = repo::AuditRef::Parse(text)) {
    auto again = repo::AuditRef::Parse(ref->Name());
    if (!again || *again != *ref) abort();
  }
  std::string once = repo::RedactText(text);
  if (repo::RedactText(once) != once) abort();
  return 0;
}
