// Task objects: their live count, and their names (explicit, or derived
// from the task's function or its type).

#include "core/task_core.hpp"
#include "core/runtime.hpp"

#include <weft/errors.hpp>
#include <weft/task.hpp>
#include <weft/time.hpp>

#include <boost/core/demangle.hpp>

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <typeindex>
#include <unordered_map>

namespace weft {

namespace detail {

namespace {
std::atomic<std::size_t> g_live_tasks{0};
}

task_base::task_base() noexcept {
  new (core_) task_core();
  g_live_tasks.fetch_add(1, std::memory_order_relaxed);
}
task_base::~task_base() {
  core_of(*this).~task_core();
  g_live_tasks.fetch_sub(1, std::memory_order_relaxed);
}
std::size_t task_objects_alive() noexcept { return g_live_tasks.load(std::memory_order_relaxed); }

std::string task_base::name() const {
  if (const std::string& n = core_of(*this).explicit_name_; !n.empty()) return n;
  if (fn_ptr_ != nullptr) {
    std::string n = function_name(fn_ptr_);
    if (!n.empty()) return n;
  }
  return fn_type_ ? demangle(*fn_type_) : std::string("task-") + std::to_string(id_);
}

namespace {

std::atomic<std::size_t> g_symbol_table_reads{0};

// Default names are computed once per function and per type, process-wide
// (the stall monitor asks from its own thread; several runtimes may run).
template <class Key>
class name_cache {
 public:
  template <class Compute>
  std::string get(Key key, Compute&& compute) {
    {
      std::lock_guard lock(mutex_);
      if (auto it = names_.find(key); it != names_.end()) return it->second;
    }
    std::string name = compute();  // outside the lock: it may read files
    std::lock_guard lock(mutex_);
    return names_.emplace(key, std::move(name)).first->second;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<Key, std::string> names_;
};

name_cache<const void*>& function_names() {
  static name_cache<const void*> cache;
  return cache;
}
name_cache<std::type_index>& type_names() {
  static name_cache<std::type_index> cache;
  return cache;
}

// Looks `addr` up in the static symbol table (.symtab) of the ELF file that
// contains it: functions with internal linkage, or in an executable linked
// without -rdynamic, are not in the dynamic table that dladdr searches.
std::string symtab_lookup(const char* file, std::uintptr_t base, std::uintptr_t addr) {
  g_symbol_table_reads.fetch_add(1, std::memory_order_relaxed);
  const int fd = ::open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  struct stat st {};
  std::string result;
  if (::fstat(fd, &st) == 0 && st.st_size > static_cast<off_t>(sizeof(Elf64_Ehdr))) {
    const auto size = static_cast<std::size_t>(st.st_size);
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map != MAP_FAILED) {
      const auto* bytes = static_cast<const unsigned char*>(map);
      const auto* eh = static_cast<const Elf64_Ehdr*>(map);
      const bool ok = std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELFCLASS64 &&
                      eh->e_shoff + std::size_t{eh->e_shnum} * sizeof(Elf64_Shdr) <= size;
      const std::uintptr_t target = eh->e_type == ET_DYN ? addr - base : addr;
      for (std::size_t i = 0; ok && result.empty() && i < eh->e_shnum; ++i) {
        const auto* sh = reinterpret_cast<const Elf64_Shdr*>(bytes + eh->e_shoff) + i;
        if (sh->sh_type != SHT_SYMTAB || sh->sh_link >= eh->e_shnum) continue;
        const auto* strsh = reinterpret_cast<const Elf64_Shdr*>(bytes + eh->e_shoff) + sh->sh_link;
        if (sh->sh_offset + sh->sh_size > size || strsh->sh_offset + strsh->sh_size > size) continue;
        const auto* syms = reinterpret_cast<const Elf64_Sym*>(bytes + sh->sh_offset);
        const std::size_t count = sh->sh_size / sizeof(Elf64_Sym);
        for (std::size_t k = 0; k < count; ++k) {
          const Elf64_Sym& sym = syms[k];
          if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_name >= strsh->sh_size) continue;
          if (target >= sym.st_value && target < sym.st_value + std::max<Elf64_Xword>(sym.st_size, 1)) {
            result = boost::core::demangle(reinterpret_cast<const char*>(bytes + strsh->sh_offset + sym.st_name));
            break;
          }
        }
      }
      ::munmap(map, size);
    }
  }
  ::close(fd);
  return result;
}

std::string lookup_function_name(void* fn) {
  Dl_info info{};
  if (::dladdr(fn, &info) == 0) return {};
  if (info.dli_sname != nullptr) return boost::core::demangle(info.dli_sname);
  const auto base = reinterpret_cast<std::uintptr_t>(info.dli_fbase);
  const auto addr = reinterpret_cast<std::uintptr_t>(fn);
  std::string name;
  if (info.dli_fname != nullptr && info.dli_fname[0] != '\0') name = symtab_lookup(info.dli_fname, base, addr);
  if (name.empty()) name = symtab_lookup("/proc/self/exe", base, addr);
  return name;
}

}  // namespace

std::string demangle(const std::type_info& type) {
  return type_names().get(std::type_index(type), [&] { return boost::core::demangle(type.name()); });
}

std::string function_name(void* fn) {
  return function_names().get(fn, [&] { return lookup_function_name(fn); });
}

std::size_t symbol_table_reads() noexcept { return g_symbol_table_reads.load(std::memory_order_relaxed); }

}  // namespace detail

task_info get_current_task() {
  detail::task_base& t = detail::require_task("weft::get_current_task");
  return {t.id_, t.name()};
}

}  // namespace weft
