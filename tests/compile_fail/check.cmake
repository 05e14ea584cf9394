# cmake -P script: compiles each case of coro_await_cases.cpp with
# -fsyntax-only and checks that the control case compiles and that every
# other case fails with exactly one error, carrying its message.
# Variables: CXX, SOURCE, INCLUDES (directories separated by '|').
string(REPLACE "|" ";" includes "${INCLUDES}")
set(flags -std=c++20 -fsyntax-only)
foreach(dir IN LISTS includes)
  list(APPEND flags -I${dir})
endforeach()

function(compile case rc_var out_var)
  execute_process(COMMAND ${CXX} ${flags} -D${case} ${SOURCE}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  set(${rc_var} ${rc} PARENT_SCOPE)
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

compile(WEFT_CASE_CONTROL rc out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the control case does not compile:\n${out}")
endif()

set(not_awaitable "co_await needs a C[+][+]20 awaitable")
set(cases
  "WEFT_CASE_CORO_NOT_AWAITABLE=${not_awaitable}"
  "WEFT_CASE_GENERATOR_NOT_AWAITABLE=${not_awaitable}"
  "WEFT_CASE_LVALUE_ASIO_AWAITABLE=co_await std::move[(]aw[)]"
  "WEFT_CASE_PORTAL_RUN_SYNC_COROUTINE=fn is a coroutine function.*use run_coroutine"
  "WEFT_CASE_PORTAL_RUN_SYNC_SOON_COROUTINE=fn is a coroutine function.*use run_coroutine")
foreach(entry IN LISTS cases)
  string(FIND "${entry}" "=" eq)
  string(SUBSTRING "${entry}" 0 ${eq} case)
  math(EXPR from "${eq} + 1")
  string(SUBSTRING "${entry}" ${from} -1 expected)
  compile(${case} rc out)
  string(REGEX MATCHALL "error:" errors "${out}")
  list(LENGTH errors count)
  if(rc EQUAL 0 OR NOT count EQUAL 1 OR NOT out MATCHES "${expected}")
    message(FATAL_ERROR "${case}: expected one error matching '${expected}', got ${count} (exit ${rc}):\n${out}")
  endif()
  message(STATUS "${case}: one error, as expected")
endforeach()
