# build.layers: proves that the build keeps each layer to the layers below
# it (CMakeLists.txt, "The layers"). For each layer it takes the real
# compile command of one of its sources from compile_commands.json, swaps
# the source for a probe file that includes one header, and checks that
# headers the layer may use compile and headers above it or beside it are
# not found. The probe is compiled as if it sat in the layer's directory
# (-iquote src/LAYER: a quoted include searches the including file's own
# directory first), so a header reachable from there would be caught too.
#
# The expectations are this file's own table, not read from the build:
# a fence that CMakeLists.txt drops or widens fails here.
#
#   cmake -DCOMMANDS=build/compile_commands.json -DSRC=src -DOUT=DIR -P layers.cmake
cmake_minimum_required(VERSION 3.20)

# layer | headers it must find | headers it must not find (comma-separated)
set(CASES
    "common|common/buf.h|core/duration.h,store/store.h"
    "core|common/error.h,core/tz.h|store/store.h,server/http.h,worker/spawn.h"
    "store|core/jobspec.h,store/store.h|server/server.h,cli/cli.h"
    "server|store/store.h,server/http.h|worker/worker.h,cli/cli.h,cmd/cmd.h"
    "worker|core/jobspec.h,worker/spawn.h|store/store.h,server/server.h,cli/cli.h"
    "cli|core/jobspec.h,cli/cli.h|store/store.h,server/server.h,worker/worker.h"
    "cmd|cmd/cmd.h,store/store.h|")

foreach(var COMMANDS SRC OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "layers.cmake: -D${var}=... is required")
  endif()
endforeach()
file(READ ${COMMANDS} json)
string(JSON count LENGTH "${json}")
math(EXPR last "${count} - 1")
file(MAKE_DIRECTORY ${OUT})

# The compile command of the first source of each layer: LAYER_ARGS_<layer>
# (a list, without -o/-c/the source/dependency-file options) and
# LAYER_DIR_<layer> (where it runs).
foreach(i RANGE ${last})
  string(JSON file GET "${json}" ${i} file)
  if(NOT file MATCHES "^${SRC}/([a-z]+)/[^/]+\\.c$")
    continue()
  endif()
  set(layer ${CMAKE_MATCH_1})
  if(DEFINED LAYER_ARGS_${layer})
    continue()
  endif()
  string(JSON command GET "${json}" ${i} command)
  string(JSON LAYER_DIR_${layer} GET "${json}" ${i} directory)
  separate_arguments(argv UNIX_COMMAND "${command}")
  set(args "")
  set(skip FALSE)
  foreach(a ${argv})
    if(skip)
      set(skip FALSE)
    elseif(a MATCHES "^-(o|MF|MT|MQ)$")
      set(skip TRUE)
    elseif(NOT a MATCHES "^-(c|MD|MMD)$" AND NOT a STREQUAL file)
      list(APPEND args "${a}")
    endif()
  endforeach()
  set(LAYER_ARGS_${layer} "${args}")
endforeach()

set(failures 0)
set(checked 0)
foreach(case ${CASES})
  string(REGEX MATCH "^([a-z]+)\\|([^|]*)\\|([^|]*)$" _ "${case}")
  set(layer ${CMAKE_MATCH_1})
  string(REPLACE "," ";" allowed "${CMAKE_MATCH_2}")
  string(REPLACE "," ";" forbidden "${CMAKE_MATCH_3}")
  if(NOT DEFINED LAYER_ARGS_${layer})
    message(SEND_ERROR "layer ${layer}: no compile command for a source in ${SRC}/${layer}/")
    math(EXPR failures "${failures} + 1")
    continue()
  endif()
  # What it may include, in one probe; then each header it may not, alone.
  set(probes "")
  set(text "")
  foreach(header ${allowed})
    string(APPEND text "#include \"${header}\"\n")
  endforeach()
  if(text)
    list(APPEND probes "allowed|${text}")
  endif()
  foreach(header ${forbidden})
    list(APPEND probes "${header}|#include \"${header}\"\n")
  endforeach()
  foreach(p ${probes})
    string(REGEX MATCH "^([^|]*)\\|(.*)$" _ "${p}")
    set(header ${CMAKE_MATCH_1})
    string(MAKE_C_IDENTIFIER "${layer}_${header}" name)
    set(probe ${OUT}/${name}.c)
    file(WRITE ${probe} "${CMAKE_MATCH_2}int layer_probe;\n")
    execute_process(
      COMMAND ${LAYER_ARGS_${layer}} -fsyntax-only -iquote ${SRC}/${layer} ${probe}
      WORKING_DIRECTORY ${LAYER_DIR_${layer}}
      RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_VARIABLE out)
    math(EXPR checked "${checked} + 1")
    string(FIND "${err}" "${header}" at)
    if(header STREQUAL "allowed")
      if(rc EQUAL 0)
        message(STATUS "ok: ${layer} includes ${allowed}")
      else()
        message(SEND_ERROR "layer ${layer} must compile ${allowed} but does not:\n${err}")
        math(EXPR failures "${failures} + 1")
      endif()
    elseif(rc EQUAL 0)
      message(SEND_ERROR "layer ${layer} compiles #include \"${header}\": the fence is open")
      math(EXPR failures "${failures} + 1")
    elseif(at LESS 0 OR NOT err MATCHES "No such file|not found")
      message(SEND_ERROR "layer ${layer}, #include \"${header}\": failed, but not because "
                         "the header is out of reach:\n${err}")
      math(EXPR failures "${failures} + 1")
    else()
      message(STATUS "ok: ${layer} cannot include ${header}")
    endif()
  endforeach()
endforeach()
if(failures)
  message(FATAL_ERROR "${failures} of ${checked} layer checks failed")
endif()
message(STATUS "all ${checked} layer checks passed")
