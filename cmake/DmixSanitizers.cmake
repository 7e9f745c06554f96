# Sanitizer and fuzzing builds, both CPU-only (nvcc cannot compile device code with
# AddressSanitizer, and the host code CUDA calls into would need it too).
#
#   -DDMIX_SANITIZE=ON (or a list such as address,undefined): every target compiled and linked
#       with -fsanitize=<list> (ON: address,undefined). UndefinedBehaviorSanitizer does not
#       recover, so undefined behaviour fails the test that reaches it instead of printing a line
#       nobody reads. scripts/sanitize.sh builds build-asan/ this way and runs the CPU suites.
#   -DDMIX_FUZZ=ON with clang (-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang): the
#       libraries compiled with -fsanitize=fuzzer-no-link,address,undefined and the libFuzzer
#       harnesses of tests/fuzz/ built (scripts/fuzz.sh).
# Included before the dependencies are searched, so that a sanitizing build settles the CUDA
# question before DmixDependencies.cmake looks for the toolkit.

set(DMIX_SANITIZE_LIST "")
if(DMIX_SANITIZE AND NOT DMIX_SANITIZE STREQUAL "OFF")
  if(DMIX_SANITIZE STREQUAL "ON")
    set(DMIX_SANITIZE_LIST "address,undefined")
  else()
    set(DMIX_SANITIZE_LIST "${DMIX_SANITIZE}")
  endif()
endif()
if(DMIX_FUZZ AND NOT DMIX_SANITIZE_LIST)
  set(DMIX_SANITIZE_LIST "address,undefined")
endif()

if(DMIX_SANITIZE_LIST)
  if(DMIX_CUDA STREQUAL "ON")
    message(FATAL_ERROR "dmix: DMIX_SANITIZE/DMIX_FUZZ build the CPU code only; configure with -DDMIX_CUDA=OFF")
  endif()
  if(NOT DMIX_CUDA STREQUAL "OFF")
    message(STATUS "dmix: sanitizers on (${DMIX_SANITIZE_LIST}): the CUDA backend is left out of this build")
    set(DMIX_CUDA "OFF" CACHE STRING "Build the CUDA backend: AUTO (if the toolkit is found), ON or OFF" FORCE)
  endif()
  set(DMIX_SANITIZE_FLAGS -fsanitize=${DMIX_SANITIZE_LIST} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  # GCC's -Wmaybe-uninitialized misfires on code the sanitizers instrument (libstdc++'s
  # <regex> among it, GCC bug 105562), which -Werror would turn into a failed build.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    list(APPEND DMIX_SANITIZE_FLAGS -Wno-maybe-uninitialized)
  endif()
  list(JOIN DMIX_SANITIZE_FLAGS " " flags_text)
  message(STATUS "dmix: compiling with ${flags_text}")
endif()

if(DMIX_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "dmix: DMIX_FUZZ needs clang's libFuzzer (Debian: clang libfuzzer-14-dev); configure with "
                        "-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang")
  endif()
  # The harness executables add -fsanitize=fuzzer, which brings libFuzzer's main().
  # clang reports every `omp simd` loop the sanitizers' checks keep it from vectorising.
  add_compile_options(-fsanitize=fuzzer-no-link -Wno-pass-failed)
endif()
if(DMIX_SANITIZE_LIST)
  add_compile_options(${DMIX_SANITIZE_FLAGS})
  add_link_options(-fsanitize=${DMIX_SANITIZE_LIST})
endif()
