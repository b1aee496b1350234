// Fuzzes small-object opening (OpenObject for config and lock objects) and the
// config decoder (RepoConfig::Decode) under a fixed key. Every input is tried
// four ways; each must succeed or throw bulwark::Error:
//   1. as a sealed config object, then RepoConfig::Decode of its payload;
//   2. as a sealed lock object;
//   3. as config JSON (RepoConfig::Decode directly);
//   4. as the *plaintext* of a config object (compression byte, varint raw
//      length, body), sealed here under the fixed key so the fuzzer reaches
//      the decoding after authentication.
// Seeds: fuzz/corpus/object_fuzz (fuzz/make_seeds.cc).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "bulwark/base/error.h"
#include "fuzz_key.h"
#include "bulwark/repo/format.h"
#include "bulwark/repo/repository.h"

using namespace bulwark;

namespace {

using fuzz::Master;

void DecodeConfig(ByteSpan json) {
  repo::RepoConfig c;
  try {
    c = repo::RepoConfig::Decode(json, "fuzz config");
  } catch (const Error&) {
    return;
  }
  // Not caught from here on: a decoded config is valid and re-decodes to the
  // same values.
  c.chunker.Validate();
  repo::RepoConfig d = repo::RepoConfig::Decode(c.Encode(), "fuzz config re-decode");
  if (d.id != c.id || d.chunker_seed != c.chunker_seed || d.compression != c.compression ||
      d.chunker.min_size != c.chunker.min_size || d.chunker.avg_size != c.chunker.avg_size ||
      d.chunker.max_size != c.chunker.max_size || d.created_ns != c.created_ns)
    abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const crypto::Aead aead(Master().enc);
  ByteSpan in(data, size);
  Bytes payload;
  bool opened = false;
  try {
    payload = repo::OpenObject(aead, repo::ObjectType::kConfig, in, "fuzz config object");
    opened = true;
  } catch (const Error&) {
  }
  if (opened) DecodeConfig(payload);
  try {
    repo::OpenObject(aead, repo::ObjectType::kLock, in, "fuzz lock object");
  } catch (const Error&) {
  }
  DecodeConfig(in);

  // 4. Seal the input as a config object's plaintext. Its raw length field is
  // authenticated in real objects (only the key holder chooses it), and
  // Decompress allocates it up front (capped at 2 GiB by design): keep it
  // below 64 MiB so the fuzzer's memory limit is not what gets tested.
  try {
    Reader r(in, "fuzz plaintext");
    r.U8();
    if (r.Varint() > (64u << 20)) return 0;
  } catch (const Error&) {
  }
  Bytes obj;
  repo::PutEnvelope(repo::ObjectType::kConfig, &obj);
  Bytes header(obj.begin(), obj.end());
  aead.Seal(in, header, &obj);
  try {
    payload = repo::OpenObject(aead, repo::ObjectType::kConfig, obj, "fuzz sealed config");
  } catch (const Error&) {
    return 0;
  }
  DecodeConfig(payload);
  return 0;
}
