// zstd compression of blobs (RFC 8878 frame format, via libzstd).
// Thread-safety: all functions are safe to call concurrently (per-thread
// contexts).
#pragma once

#include <cstdint>

#include "bulwark/base/bytes.h"

namespace bulwark::compress {

// Compresses `data` at `level` (1..19) into `out`. Returns false, leaving `out`
// unspecified, when compression saves less than 1/32 of the input: the caller
// then stores the data uncompressed (incompressible data costs no CPU on
// restore and no space). `workers` > 0 compresses in that many threads of
// libzstd's own (ZSTD_c_nbWorkers; independent jobs of a few MiB, so worth it
// from a few MiB of input; the frame is still one standard frame); 0
// compresses in the calling thread.
bool Compress(ByteSpan data, int level, Bytes* out, int workers = 0);

// Like Compress, for hot paths: compresses into `scratch` (grown when too
// small, never shrunk or cleared) and returns the compressed bytes inside it,
// or an empty span when compression does not pay.
ByteSpan CompressInto(ByteSpan data, int level, Bytes* scratch);

// Decompresses a frame that must expand to exactly `raw_len` bytes; throws
// Error(kCorrupt, "<what>: ...") otherwise.
Bytes Decompress(ByteSpan frame, uint64_t raw_len, std::string_view what);
// Same into `*buf` (grown when too small, never shrunk); returns the output.
ByteSpan DecompressInto(ByteSpan frame, uint64_t raw_len, std::string_view what, Bytes* buf);

}  // namespace bulwark::compress
