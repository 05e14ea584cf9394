// The warning given when AddressSanitizer watches a process whose weft was
// built without it, and so does not tell it about switches between stacks.
#pragma once

namespace weft::detail {

/// Prints one line to stderr, once per process, if this process runs under
/// AddressSanitizer but this weft was compiled without it: ASan then does
/// not know that tasks run on stacks of their own, and exceptions thrown in
/// tasks give false stack-use-after-scope and stack-buffer-overflow reports.
/// The line says to link weft::weft_asan. Does nothing in a weft compiled
/// with ASan (WEFT_SANITIZE, or the weft_asan variant), nor without ASan in
/// the process. Called by weft::run; cheap after the first call.
void warn_if_unannotated_asan() noexcept;

}  // namespace weft::detail
