# isle — MIT licensed.
#
# The SPIN model checks (ctest label spin), shared by tests/mailbox/ and
# tests/models/: finds spin and defines isle_add_spin_check.
#
# The models check protocols, not the compiled code, so they are registered
# once, in the builds without a sanitizer (release, debug), not again in
# asan, tsan and chaos. spin is required there: tools/deps.sh installs it.
# Without it the checks are still registered and fail, saying so, rather
# than being skipped.
include_guard(DIRECTORY)

find_program(ISLE_SPIN spin DOC "the SPIN model checker (ctest -L spin)")
if(NOT ISLE_SPIN AND ISLE_SANITIZE STREQUAL "")
  message(WARNING
    "spin not found: the model checks (ctest -L spin) will fail; "
    "tools/deps.sh installs it")
endif()
# The command the checks run: spin's path, or a bare name that fails.
if(ISLE_SPIN)
  set(ISLE_SPIN_COMMAND "${ISLE_SPIN}")
else()
  set(ISLE_SPIN_COMMAND spin)
endif()

# isle_add_spin_check(NAME MODEL [LIVE] [COLLAPSE] [EXPECT_ERROR regex]
#                     [DEFINES -DNAME[=VALUE]...] [LABELS label...])
# Registers NAME: tests/models/spin_check.sh on MODEL (relative to the
# calling folder) with DEFINES. LIVE: the acceptance-cycle search under
# weak fairness (the model's ltl formula); COLLAPSE: pan's lossless state
# compression; EXPECT_ERROR: a known-bad variant, which passes only when
# spin finds an error matching the regex. Labels: spin, and LABELS.
function(isle_add_spin_check NAME MODEL)
  cmake_parse_arguments(PARSE_ARGV 2 ARG "LIVE;COLLAPSE" "EXPECT_ERROR"
                        "DEFINES;LABELS")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR
      "isle_add_spin_check(${NAME}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ISLE_SANITIZE STREQUAL "")
    return()
  endif()
  set(opts)
  if(ARG_LIVE)
    list(APPEND opts --live)
  endif()
  if(ARG_COLLAPSE)
    list(APPEND opts --collapse)
  endif()
  if(DEFINED ARG_EXPECT_ERROR)
    list(APPEND opts --expect-error "${ARG_EXPECT_ERROR}")
  endif()
  add_test(NAME ${NAME}
    COMMAND bash ${PROJECT_SOURCE_DIR}/tests/models/spin_check.sh ${opts}
            ${CMAKE_CURRENT_SOURCE_DIR}/${MODEL} ${ARG_DEFINES})
  set_tests_properties(${NAME} PROPERTIES
    TIMEOUT 300
    LABELS "spin;${ARG_LABELS}"
    ENVIRONMENT "SPIN=${ISLE_SPIN_COMMAND};CC=${CMAKE_C_COMPILER}")
endfunction()
