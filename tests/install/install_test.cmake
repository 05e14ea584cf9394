# cmake -P script: install, build consumers against the install, run them.
file(REMOVE_RECURSE ${SCRATCH})
set(prefix ${SCRATCH}/prefix)
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${ARGN}")
  endif()
endfunction()
# Configures the consumer into ${SCRATCH}/<dir> with the given options;
# sets <dir>_rc and <dir>_output (stdout and stderr) in the caller.
function(configure_consumer dir)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE} -B ${SCRATCH}/${dir} -G ${GENERATOR}
                          -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  set(${dir}_rc ${rc} PARENT_SCOPE)
  set(${dir}_output "${out}" PARENT_SCOPE)
endfunction()
step(${CMAKE_COMMAND} --install ${WEFT_BUILD_DIR} --prefix ${prefix})

# The package files carry no remnant of build-only settings: an empty
# $<LINK_ONLY:> (a static library linking a build-only target privately),
# an empty condition from an unset configure variable.
file(GLOB package_files ${prefix}/lib*/cmake/weft/*.cmake)
if(NOT package_files)
  message(FATAL_ERROR "no package files installed under ${prefix}/lib*/cmake/weft")
endif()
foreach(f IN LISTS package_files)
  file(READ ${f} content)
  foreach(remnant "[$]<LINK_ONLY:>" "(^|[^A-Za-z_])if[(](NOT )? *[)]" "(^|[^A-Za-z_])if[(] *(AND|OR) ")
    if(content MATCHES "${remnant}")
      message(FATAL_ERROR "${f} contains '${CMAKE_MATCH_0}'")
    endif()
  endforeach()
endforeach()

if(ASAN_VARIANT)
  configure_consumer(build -DCONSUMER_ASAN=ON)
  set(consumers consumer consumer_asan consumer_plain_under_asan)
else()
  # Without the variant, asking for it fails at find_package, and says how
  # to get it.
  configure_consumer(no_asan -DCONSUMER_ASAN=ON)
  if(no_asan_rc EQUAL 0 OR NOT no_asan_output MATCHES "WEFT_INSTALL_ASAN_VARIANT=ON")
    message(FATAL_ERROR "find_package(weft COMPONENTS asan) without the variant installed:\n${no_asan_output}")
  endif()
  configure_consumer(build)
  set(consumers consumer)
endif()
if(NOT build_rc EQUAL 0)
  message(FATAL_ERROR "configuring the consumer failed:\n${build_output}")
endif()
step(${CMAKE_COMMAND} --build ${SCRATCH}/build)

# A static weft brings static Boost.Fiber and Boost.Context to its
# consumers (their shared libraries cost about twice per task switch); so
# does its ASan variant.
foreach(consumer IN LISTS consumers)
  execute_process(COMMAND ldd ${SCRATCH}/build/${consumer} OUTPUT_VARIABLE needed RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "ldd failed on ${consumer} (${rc})")
  endif()
  if(BOOST_STATIC)
    foreach(lib libboost_fiber libboost_context)
      if(needed MATCHES "${lib}[.]so")
        message(FATAL_ERROR "${consumer}, a consumer of a static weft, links ${lib} dynamically:\n${needed}")
      endif()
    endforeach()
  else()
    if(NOT needed MATCHES "libboost_fiber[.]so")
      message(FATAL_ERROR "${consumer}, a consumer of a shared weft, does not link libboost_fiber.so:\n${needed}")
    endif()
  endif()
endforeach()
step(${SCRATCH}/build/consumer)

if(ASAN_VARIANT)
  # Whatever the environment says: leaks are errors, and no fake stacks for
  # stack-use-after-return (which weft's switch annotations do not support).
  set(ENV{ASAN_OPTIONS} "detect_leaks=1:detect_stack_use_after_return=0")
  set(warning "runs under AddressSanitizer but uses a weft built without it")

  # Exceptions on task stacks under ASan, with weft::weft_asan: no report,
  # no warning.
  execute_process(COMMAND ${SCRATCH}/build/consumer_asan RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(STRIP "${out}\n${err}" shown)
  message(STATUS "consumer_asan exited with ${rc}:\n${shown}")
  if(NOT rc EQUAL 0 OR err MATCHES "AddressSanitizer")
    message(FATAL_ERROR "consumer_asan, an ASan program on weft::weft_asan, failed")
  endif()
  if(err MATCHES "${warning}")
    message(FATAL_ERROR "weft::weft_asan warned that it is not built for ASan")
  endif()

  # An ASan program on the plain weft::weft: warned about at the first
  # weft::run, and only then.
  execute_process(COMMAND ${SCRATCH}/build/consumer_plain_under_asan
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(STRIP "${out}\n${err}" shown)
  message(STATUS "consumer_plain_under_asan exited with ${rc}:\n${shown}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer_plain_under_asan failed")
  endif()
  string(REGEX MATCHALL "${warning}" warnings "${err}")
  list(LENGTH warnings count)
  if(NOT count EQUAL 1)
    message(FATAL_ERROR "an ASan program on the plain weft::weft got ${count} warnings, not 1")
  endif()
  if(NOT err MATCHES "link weft::weft_asan")
    message(FATAL_ERROR "the warning does not say to link weft::weft_asan")
  endif()
  string(FIND "${err}" "${warning}" warning_at)
  string(FIND "${err}" "consumer_plain_under_asan: first run returned" first_run_end)
  if(first_run_end EQUAL -1 OR NOT warning_at LESS first_run_end)
    message(FATAL_ERROR "the warning did not come during the first weft::run")
  endif()

  # weft::weft_asan with the plain weft::greenback (which brings weft::weft)
  # would put two weft libraries in one program: refused at generation.
  configure_consumer(mixed -DCONSUMER_MIX_VARIANTS=ON)
  if(mixed_rc EQUAL 0 OR NOT mixed_output MATCHES "WEFT_VARIANT")
    message(FATAL_ERROR "a consumer of weft::weft_asan and weft::greenback was not refused:\n${mixed_output}")
  endif()
endif()
