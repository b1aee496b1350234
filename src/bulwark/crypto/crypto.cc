#include "bulwark/crypto/crypto.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "bulwark/base/error.h"

namespace bulwark::crypto {
namespace {

void EnsureSodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) throw Error(ErrorCode::kInternal, "libsodium initialisation failed");
  });
}

[[noreturn]] void OpensslFail(const char* what) {
  throw Error(ErrorCode::kInternal, std::string("OpenSSL: ") + what + " failed");
}

EVP_MAC* HmacAlgorithm() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (!mac) OpensslFail("EVP_MAC_fetch(HMAC)");
  return mac;
}

// Fetched once: EVP_aes_256_gcm() would look the implementation up per call.
const EVP_CIPHER* Gcm() {
  static EVP_CIPHER* gcm = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  if (!gcm) OpensslFail("EVP_CIPHER_fetch(AES-256-GCM)");
  return gcm;
}

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

const uint8_t kZeroNonce[12] = {};
constexpr std::string_view kAeadLabel = "bulwark-aead-v1";

}  // namespace

Bytes RandomBytes(size_t n) {
  EnsureSodium();
  Bytes b(n);
  if (n > 0) randombytes_buf(b.data(), n);  // b.data() is null when n == 0 (nonnull argument)
  return b;
}

// Random bytes for AEAD salts: drawn from the OS CSPRNG 4 KiB at a time per
// thread (one getrandom call per 256 units instead of one per unit).
static void FastRandom(uint8_t* out, size_t n) {
  thread_local uint8_t pool[4096];
  thread_local size_t left = 0;
  if (n > sizeof pool) {
    randombytes_buf(out, n);
    return;
  }
  if (left < n) {
    randombytes_buf(pool, sizeof pool);
    left = sizeof pool;
  }
  std::memcpy(out, pool + (sizeof pool - left), n);
  sodium_memzero(pool + (sizeof pool - left), n);  // never hand out the same bytes twice
  left -= n;
}

Id RandomId() {
  EnsureSodium();
  Id id;
  randombytes_buf(id.b.data(), id.b.size());
  return id;
}

Id Sha256(ByteSpan data) {
  Id id;
  unsigned int len = 0;
  if (!EVP_Digest(data.data(), data.size(), id.b.data(), &len, EVP_sha256(), nullptr)) OpensslFail("SHA-256");
  return id;
}

Sha256Stream::Sha256Stream() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || !EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr)) OpensslFail("SHA-256 init");
}
Sha256Stream::~Sha256Stream() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256Stream::Update(ByteSpan data) {
  if (!EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size())) OpensslFail("SHA-256 update");
}
Id Sha256Stream::Final() {
  Id id;
  unsigned int len = 0;
  if (!EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), id.b.data(), &len)) OpensslFail("SHA-256 final");
  return id;
}

KeyedHasher::KeyedHasher(const Key32& key) {
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(HmacAlgorithm());
  if (!ctx) OpensslFail("EVP_MAC_CTX_new");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (!EVP_MAC_init(ctx, key.data(), key.size(), params)) {
    EVP_MAC_CTX_free(ctx);
    OpensslFail("HMAC init");
  }
  mac_ctx_ = ctx;
}

KeyedHasher::~KeyedHasher() { EVP_MAC_CTX_free(static_cast<EVP_MAC_CTX*>(mac_ctx_)); }

Id KeyedHasher::Mac2(ByteSpan a, ByteSpan b) const {
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(static_cast<EVP_MAC_CTX*>(mac_ctx_));
  if (!ctx) OpensslFail("EVP_MAC_CTX_dup");
  Id id;
  size_t len = 0;
  bool ok = EVP_MAC_update(ctx, a.data(), a.size()) && (b.empty() || EVP_MAC_update(ctx, b.data(), b.size())) &&
            EVP_MAC_final(ctx, id.b.data(), &len, id.b.size());
  EVP_MAC_CTX_free(ctx);
  if (!ok || len != 32) OpensslFail("HMAC");
  return id;
}

Id KeyedHasher::Mac(ByteSpan data) const { return Mac2(data, {}); }

MasterKey MasterKey::Generate() {
  EnsureSodium();
  MasterKey k;
  randombytes_buf(k.enc.data(), k.enc.size());
  randombytes_buf(k.id.data(), k.id.size());
  return k;
}

Bytes MasterKey::Serialize() const {
  Bytes b(enc.begin(), enc.end());
  b.insert(b.end(), id.begin(), id.end());
  return b;
}

MasterKey MasterKey::Parse(ByteSpan b) {
  if (b.size() != 64) throw Error(ErrorCode::kCorrupt, "master key has wrong length");
  MasterKey k;
  std::memcpy(k.enc.data(), b.data(), 32);
  std::memcpy(k.id.data(), b.data() + 32, 32);
  return k;
}

Aead::Aead(const Key32& enc_key) : kdf_(enc_key) {}

void Aead::Seal(ByteSpan plaintext, ByteSpan aad, Bytes* out) const {
  EnsureSodium();
  size_t base = out->size();
  out->resize(base + kOverhead + plaintext.size());
  uint8_t* salt = out->data() + base;
  FastRandom(salt, kSaltSize);
  Id subkey = kdf_.Mac2(AsBytes(kAeadLabel), ByteSpan(salt, kSaltSize));
  CipherCtx c;
  int len = 0;
  uint8_t* ct = salt + kSaltSize;
  if (!c.ctx || !EVP_EncryptInit_ex(c.ctx, Gcm(), nullptr, subkey.b.data(), kZeroNonce) ||
      (!aad.empty() && !EVP_EncryptUpdate(c.ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size()))))
    OpensslFail("AES-GCM init");
  // EVP takes int lengths: feed large plaintexts in pieces.
  size_t done = 0;
  while (done < plaintext.size()) {
    size_t n = std::min<size_t>(plaintext.size() - done, 1 << 30);
    if (!EVP_EncryptUpdate(c.ctx, ct + done, &len, plaintext.data() + done, static_cast<int>(n)))
      OpensslFail("AES-GCM encrypt");
    done += n;
  }
  if (!EVP_EncryptFinal_ex(c.ctx, ct + done, &len) ||
      !EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kTagSize, ct + plaintext.size()))
    OpensslFail("AES-GCM final");
  sodium_memzero(subkey.b.data(), subkey.b.size());
}

Bytes Aead::Open(ByteSpan sealed, ByteSpan aad, std::string_view what) const {
  Bytes out;
  ByteSpan plain = OpenInto(sealed, aad, what, &out);
  out.resize(plain.size());
  return out;
}

ByteSpan Aead::OpenInto(ByteSpan sealed, ByteSpan aad, std::string_view what, Bytes* buf) const {
  if (sealed.size() < kOverhead)
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": encrypted unit truncated (" +
                                         std::to_string(sealed.size()) + " bytes)");
  const uint8_t* salt = sealed.data();
  size_t n = sealed.size() - kOverhead;
  const uint8_t* ct = salt + kSaltSize;
  Id subkey = kdf_.Mac2(AsBytes(kAeadLabel), ByteSpan(salt, kSaltSize));
  if (buf->size() < n + 16) buf->resize(n + 16);  // room for EVP's final block
  uint8_t* out = buf->data();
  CipherCtx c;
  int len = 0;
  if (!c.ctx || !EVP_DecryptInit_ex(c.ctx, Gcm(), nullptr, subkey.b.data(), kZeroNonce) ||
      (!aad.empty() && !EVP_DecryptUpdate(c.ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size()))))
    OpensslFail("AES-GCM init");
  size_t done = 0;
  while (done < n) {
    size_t k = std::min<size_t>(n - done, 1 << 30);
    if (!EVP_DecryptUpdate(c.ctx, out + done, &len, ct + done, static_cast<int>(k))) OpensslFail("AES-GCM decrypt");
    done += k;
  }
  uint8_t tag[kTagSize];
  std::memcpy(tag, ct + n, kTagSize);
  bool ok = EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kTagSize, tag) &&
            EVP_DecryptFinal_ex(c.ctx, out + n, &len) > 0;
  sodium_memzero(subkey.b.data(), subkey.b.size());
  if (!ok)
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": authentication failed (data altered, truncated, or "
                                                         "written under another key)");
  return ByteSpan(out, n);
}

namespace {
std::atomic<uint64_t> g_derive_key_count{0};
}  // namespace

uint64_t DeriveKeyCount() { return g_derive_key_count.load(); }

Key32 DeriveKey(std::string_view password, const KdfParams& params) {
  EnsureSodium();
  g_derive_key_count++;
  if (params.salt.size() != crypto_pwhash_SALTBYTES)
    throw Error(ErrorCode::kCorrupt, "key file: KDF salt has wrong length");
  if (params.ops < crypto_pwhash_OPSLIMIT_MIN || params.mem < crypto_pwhash_MEMLIMIT_MIN ||
      params.mem > (4ull << 30) || params.ops > 64)
    throw Error(ErrorCode::kCorrupt, "key file: KDF parameters out of range");
  Key32 key;
  if (crypto_pwhash(key.data(), key.size(), password.data(), password.size(), params.salt.data(), params.ops,
                    params.mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
    throw Error(ErrorCode::kIo, "Argon2id: out of memory deriving the key");
  return key;
}

}  // namespace bulwark::crypto
