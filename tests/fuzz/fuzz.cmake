# libFuzzer targets (tests/fuzz/README.md). Included from CMakeLists.txt when
# SKED_FUZZ is on; needs clang. Configure a separate build directory:
#   CC=clang cmake -S . -B build-fuzz -DSKED_FUZZ=ON -DSKED_SANITIZE=ON
# and build the `fuzz` target. tests/fuzz/run.sh does both and runs them.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "SKED_FUZZ needs clang (libFuzzer): configure with CC=clang")
endif()
if(NOT SKED_SANITIZE)
  message(WARNING "SKED_FUZZ without SKED_SANITIZE finds crashes only, not memory errors or UB")
endif()

# Coverage feedback for the code under test, not only for the harnesses.
foreach(lib sked_common sked_core sked_store sked_server sked_worker sked_cli)
  target_compile_options(${lib} PRIVATE -fsanitize=fuzzer-no-link)
endforeach()

add_custom_target(fuzz)
foreach(name cron duration jobspec http httpspec workflow yaml jschema)
  add_executable(fuzz_${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_${name}.c)
  target_include_directories(fuzz_${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz)
  target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_${name} PRIVATE sked_roles)
  add_dependencies(fuzz fuzz_${name})
endforeach()
