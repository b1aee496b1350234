// Cryptography for the repository format (docs/FORMAT.md, "Cryptography").
// Everything here is a thin adapter over OpenSSL (SHA-256, HMAC-SHA-256,
// AES-256-GCM) and libsodium (Argon2id, random bytes); no primitive is
// implemented in bulwark.
//
// Thread-safety: all functions are safe to call concurrently. `Keys` and
// `KeyedHasher` are immutable after construction and may be shared.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "bulwark/base/bytes.h"

namespace bulwark::crypto {

using Key32 = std::array<uint8_t, 32>;

// Fills `n` bytes from the OS CSPRNG (libsodium randombytes_buf).
Bytes RandomBytes(size_t n);
Id RandomId();

// SHA-256 (FIPS 180-4) of `data`: names content-addressed objects.
Id Sha256(ByteSpan data);

// Incremental SHA-256 (used for stream checksums recorded in snapshots).
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void Update(ByteSpan data);
  Id Final();

 private:
  void* ctx_;
};

// HMAC-SHA-256 (RFC 2104) under a fixed key, keyed once. Computes blob ids:
// id = HMAC-SHA-256(K_id, plaintext), so identical plaintexts deduplicate while
// an attacker without the key cannot test for known files.
class KeyedHasher {
 public:
  explicit KeyedHasher(const Key32& key);
  ~KeyedHasher();
  KeyedHasher(const KeyedHasher&) = delete;
  KeyedHasher& operator=(const KeyedHasher&) = delete;
  Id Mac(ByteSpan data) const;
  Id Mac2(ByteSpan a, ByteSpan b) const;  // MAC of a || b

 private:
  void* mac_ctx_;  // EVP_MAC_CTX keyed once, duplicated per call
};

// The repository master key: two independent 256-bit keys.
struct MasterKey {
  Key32 enc{};  // AES-256-GCM sub-key derivation key
  Key32 id{};   // blob-id HMAC key
  static MasterKey Generate();
  Bytes Serialize() const;  // 64 bytes
  static MasterKey Parse(ByteSpan b);  // throws kCorrupt unless 64 bytes
};

// Authenticated encryption of one unit (a blob, a pack header, an index...).
// Sealed layout: salt[16] || ciphertext[n] || tag[16]  (kOverhead = 32 bytes).
//   subkey = HMAC-SHA-256(K_enc, "bulwark-aead-v1" || salt)
//   nonce  = 12 zero bytes (each subkey encrypts exactly one unit)
//   AES-256-GCM(subkey, nonce, aad, plaintext)  (NIST SP 800-38D)
// A fresh random 128-bit salt per unit means nonce reuse needs a salt
// collision: about 2^-64 after 2^32 units, far below any repository's size.
class Aead {
 public:
  static constexpr size_t kSaltSize = 16;
  static constexpr size_t kTagSize = 16;
  static constexpr size_t kOverhead = kSaltSize + kTagSize;

  explicit Aead(const Key32& enc_key);
  // Appends the sealed unit to `out`.
  void Seal(ByteSpan plaintext, ByteSpan aad, Bytes* out) const;
  Bytes Seal(ByteSpan plaintext, ByteSpan aad) const {
    Bytes out;
    Seal(plaintext, aad, &out);
    return out;
  }
  // Decrypts and authenticates; throws Error(kCorrupt, "<what>: authentication
  // failed ...") if the unit was altered, truncated, or sealed under another key.
  Bytes Open(ByteSpan sealed, ByteSpan aad, std::string_view what) const;
  // Same, decrypting into `*buf` (grown when too small, never shrunk or
  // cleared: no allocation on hot paths); returns the plaintext inside it.
  ByteSpan OpenInto(ByteSpan sealed, ByteSpan aad, std::string_view what, Bytes* buf) const;

 private:
  KeyedHasher kdf_;
};

// Argon2id (RFC 9106) password-based key derivation (libsodium crypto_pwhash).
struct KdfParams {
  uint64_t ops = 3;                  // iterations
  uint64_t mem = 64ull << 20;        // bytes of memory
  Bytes salt;                        // 16 bytes
};
Key32 DeriveKey(std::string_view password, const KdfParams& params);
// How many times DeriveKey ran in this process (tests: opening with a
// machine key must not run it; diagnostics).
uint64_t DeriveKeyCount();

}  // namespace bulwark::crypto
