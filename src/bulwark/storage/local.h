// Local-directory backend. Layout on disk mirrors object names: "data/3f/..."
// is the file <root>/data/3f/<name>. Writes are atomic and durable: a temp file
// in the target directory, fsync, rename over the final name, fsync of the
// directory (so a crash never leaves a partial object under its final name).
#pragma once

#include "bulwark/storage/backend.h"

namespace bulwark::storage {

std::unique_ptr<Backend> NewLocalBackend(const std::string& root);

}  // namespace bulwark::storage
