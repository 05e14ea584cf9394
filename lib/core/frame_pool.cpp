// Per-thread recycling of frame-sized blocks (see lowlevel/frame_pool.hpp).

#include <weft/lowlevel/frame_pool.hpp>

#include <array>
#include <new>

namespace weft::lowlevel {

namespace {

constexpr std::size_t frame_granularity = 64;
constexpr std::size_t frame_classes = 32;  // frames up to 2 KiB are recycled
constexpr std::size_t frames_kept_per_class = 64;

struct free_frame {
  free_frame* next;
};

struct frame_cache {
  std::array<free_frame*, frame_classes> heads{};
  std::array<std::size_t, frame_classes> counts{};
  ~frame_cache() {
    for (free_frame* f : heads) {
      while (f != nullptr) {
        free_frame* next = f->next;
        ::operator delete(f);
        f = next;
      }
    }
  }
};

thread_local frame_cache t_frames;

std::size_t frame_class(std::size_t size) noexcept { return (size + frame_granularity - 1) / frame_granularity; }

}  // namespace

void* frame_allocate(std::size_t size) {
  const std::size_t c = frame_class(size);
  if (c < frame_classes) {
    if (free_frame* f = t_frames.heads[c]) {
      t_frames.heads[c] = f->next;
      --t_frames.counts[c];
      return f;
    }
    return ::operator new(c * frame_granularity);
  }
  return ::operator new(size);
}

void frame_deallocate(void* frame, std::size_t size) noexcept {
  const std::size_t c = frame_class(size);
  if (c < frame_classes && t_frames.counts[c] < frames_kept_per_class) {
    auto* f = static_cast<free_frame*>(frame);
    f->next = t_frames.heads[c];
    t_frames.heads[c] = f;
    ++t_frames.counts[c];
    return;
  }
  ::operator delete(frame);
}

}  // namespace weft::lowlevel
