# Unit tests: one cmocka executable per file in tests/unit, one process each under ctest.
file(GLOB UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE sked_roles PkgConfig::CMOCKA)
  add_test(NAME unit.${name} COMMAND ${name})
  set_tests_properties(unit.${name} PROPERTIES LABELS "unit" TIMEOUT 120
                       ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=stdout")
endforeach()

# Plugin hosts run the test plugins (tests/plugins, built into test-plugins/) in real
# `sked plugin-host` processes.
target_compile_definitions(test_plugin_host PRIVATE SKED_EXE="$<TARGET_FILE:sked>"
  TEST_PLUGIN_DIR="${CMAKE_BINARY_DIR}/test-plugins"
  FUTURE_ABI_MARKER="${CMAKE_BINARY_DIR}/future_abi.ran")
add_dependencies(test_plugin_host sked plugin_misbehave plugin_future_abi)

# The time-zone test's window onto core/schedule (tests/e2e/test_timezones.py).
add_executable(sked-tz-helper ${CMAKE_SOURCE_DIR}/tests/unit/tz_helper.c)
target_link_libraries(sked-tz-helper PRIVATE sked_core)

# Store conformance: the same file runs against every backend (label names the backend).
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/store/test_store.c)
  add_executable(test_store ${CMAKE_SOURCE_DIR}/tests/store/test_store.c)
  target_link_libraries(test_store PRIVATE sked_store PkgConfig::CMOCKA)
  add_test(NAME store.sqlite COMMAND test_store sqlite)
  set_tests_properties(store.sqlite PROPERTIES LABELS "store;sqlite" TIMEOUT 300)
  # A real, throwaway PostgreSQL (initdb + pg_ctl in a temp dir) per run.
  add_test(NAME store.postgres COMMAND ${CMAKE_SOURCE_DIR}/tests/store/pg_harness.sh
           $<TARGET_FILE:test_store> postgres)
  set_tests_properties(store.postgres PROPERTIES LABELS "store;postgres" TIMEOUT 600)
endif()
# The run graph (workflows, job arrays, job dependencies): the same file on both backends.
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/store/test_graph.c)
  add_executable(test_graph ${CMAKE_SOURCE_DIR}/tests/store/test_graph.c)
  target_link_libraries(test_graph PRIVATE sked_store PkgConfig::CMOCKA)
  add_test(NAME store.graph.sqlite COMMAND test_graph sqlite)
  set_tests_properties(store.graph.sqlite PROPERTIES LABELS "store;sqlite" TIMEOUT 300)
  add_test(NAME store.graph.postgres COMMAND ${CMAKE_SOURCE_DIR}/tests/store/pg_harness.sh
           $<TARGET_FILE:test_graph> postgres)
  set_tests_properties(store.graph.postgres PROPERTIES LABELS "store;postgres" TIMEOUT 600)
endif()
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/store/test_durability.c)
  add_executable(test_durability ${CMAKE_SOURCE_DIR}/tests/store/test_durability.c)
  target_link_libraries(test_durability PRIVATE sked_store PkgConfig::CMOCKA PkgConfig::SQLITE)
  add_test(NAME store.durability COMMAND test_durability)
  set_tests_properties(store.durability PROPERTIES LABELS "store;sqlite" TIMEOUT 120)
endif()
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/store/test_store_pg.c)
  add_executable(test_store_pg ${CMAKE_SOURCE_DIR}/tests/store/test_store_pg.c)
  target_link_libraries(test_store_pg PRIVATE sked_store PkgConfig::CMOCKA PkgConfig::PQ)
  add_test(NAME store.postgres_cluster COMMAND ${CMAKE_SOURCE_DIR}/tests/store/pg_harness.sh
           $<TARGET_FILE:test_store_pg>)
  set_tests_properties(store.postgres_cluster PROPERTIES LABELS "store;postgres" TIMEOUT 300)
endif()

# Backend parity: one scripted scenario on a SQLite and a PostgreSQL store, compared field by
# field, and the two live schema catalogs compared (needs a throwaway PostgreSQL, as above).
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/store/test_parity.c)
  add_executable(test_parity ${CMAKE_SOURCE_DIR}/tests/store/test_parity.c)
  target_link_libraries(test_parity PRIVATE sked_store PkgConfig::CMOCKA PkgConfig::PQ
                        PkgConfig::SQLITE)
  add_test(NAME store.parity COMMAND ${CMAKE_SOURCE_DIR}/tests/store/pg_harness.sh
           $<TARGET_FILE:test_parity>)
  set_tests_properties(store.parity PROPERTIES LABELS "store;postgres;sqlite" TIMEOUT 300)
endif()

# End-to-end: real sked processes on loopback, driven over HTTP and the CLI.
file(GLOB E2E_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/e2e/test_*.py)
foreach(src ${E2E_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME e2e.${name} COMMAND python3 -m unittest -v ${name}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/e2e)
  set_tests_properties(e2e.${name} PROPERTIES LABELS "e2e" TIMEOUT 600
                       ENVIRONMENT "SKED_BIN=$<TARGET_FILE:sked>;PYTHONDONTWRITEBYTECODE=1")
endforeach()
# The cluster chaos test (minutes of restarts and kills over PostgreSQL) runs in the plain
# build only: its C paths run under the sanitizers in store.postgres_cluster and the other
# PostgreSQL suites, and under ASan it alone took a sixth of the CI budget.
if(TEST e2e.test_cluster)
  set_property(TEST e2e.test_cluster APPEND PROPERTY LABELS "chaos")
endif()
if(TEST e2e.test_timezones)
  set_property(TEST e2e.test_timezones APPEND PROPERTY ENVIRONMENT
               "SKED_TZ_HELPER=$<TARGET_FILE:sked-tz-helper>")
endif()

# The alert senders' window (tests/e2e/test_alert_send.py drives it against
# the real receivers of tests/e2e/sinks.py).
add_executable(sked-alert-send-helper ${CMAKE_SOURCE_DIR}/tests/unit/alert_send_helper.c)
target_link_libraries(sked-alert-send-helper PRIVATE sked_server)
if(TEST e2e.test_alert_send)
  set_property(TEST e2e.test_alert_send APPEND PROPERTY ENVIRONMENT
               "SKED_ALERT_SEND_HELPER=$<TARGET_FILE:sked-alert-send-helper>")
endif()

# The OpenAPI contract, linted by a pinned Redocly CLI (npm ci into the build dir on first run).
add_test(NAME docs.openapi_lint COMMAND bash ${CMAKE_SOURCE_DIR}/tests/openapi/lint.sh
         ${CMAKE_BINARY_DIR}/openapi-lint)
set_tests_properties(docs.openapi_lint PROPERTIES LABELS "docs;openapi" TIMEOUT 600)

# The dashboard in a real browser: Debian's chromium driven by a pinned Playwright (npm ci into
# the build dir on first run), against a real `sked dev`; screenshots in build/screenshots/.
# The Jobs page is timed with 100,000 jobs in the store, made through the API; under the
# sanitizers (several times slower) with 10,000.
add_test(NAME e2e.browser COMMAND bash ${CMAKE_SOURCE_DIR}/tests/browser/run.sh ${CMAKE_BINARY_DIR})
if(SKED_SANITIZE)
  set(SKED_BROWSER_JOBS 10000)
else()
  set(SKED_BROWSER_JOBS 100000)
endif()
set_tests_properties(e2e.browser PROPERTIES LABELS "e2e;browser" TIMEOUT 600
                     ENVIRONMENT "SKED_BIN=$<TARGET_FILE:sked>;SKED_BROWSER_JOBS=${SKED_BROWSER_JOBS}")
# The same pages on PostgreSQL: `sked server` on a throwaway database (pg_harness.sh) and a
# `sked worker`, the Jobs page timed with 10,000 jobs; screenshots in build/screenshots-postgres/.
add_test(NAME e2e.browser.postgres COMMAND ${CMAKE_SOURCE_DIR}/tests/store/pg_harness.sh
         bash ${CMAKE_SOURCE_DIR}/tests/browser/run.sh ${CMAKE_BINARY_DIR})
set_tests_properties(e2e.browser.postgres PROPERTIES LABELS "e2e;browser;postgres" TIMEOUT 600
                     ENVIRONMENT "SKED_BIN=$<TARGET_FILE:sked>;SKED_BROWSER_JOBS=10000;SKED_SCREENSHOTS=${CMAKE_BINARY_DIR}/screenshots-postgres")

# The layer fences of CMakeLists.txt: a probe per layer, compiled with the
# layer's real compile command, must reach the layers below and no others.
add_test(NAME build.layers
         COMMAND ${CMAKE_COMMAND} -DCOMMANDS=${CMAKE_BINARY_DIR}/compile_commands.json
                 -DSRC=${CMAKE_SOURCE_DIR}/src -DOUT=${CMAKE_BINARY_DIR}/layer-probes
                 -P ${CMAKE_SOURCE_DIR}/tests/build/layers.cmake)
set_tests_properties(build.layers PROPERTIES LABELS "build" TIMEOUT 60)

# Plugins (plugins/plugins.cmake) and the test plugins of tests/plugins/, which land in
# build/test-plugins/: misbehave (what a plugin host must survive) and future_abi (a manifest
# of ABI 999 whose constructor leaves MARKER behind, so a test proves it was never loaded).
set(SKED_TEST_PLUGIN_DIR ${CMAKE_BINARY_DIR}/test-plugins)
sked_plugin(misbehave ${CMAKE_SOURCE_DIR}/tests/plugins/misbehave/misbehave.c
            ${SKED_TEST_PLUGIN_DIR} PkgConfig::JANSSON)
sked_plugin(future_abi ${CMAKE_SOURCE_DIR}/tests/plugins/future_abi/future_abi.c
            ${SKED_TEST_PLUGIN_DIR})
target_compile_definitions(plugin_future_abi PRIVATE MARKER="${CMAKE_BINARY_DIR}/future_abi.ran")
# A schema sked cannot apply ($ref): kept out of test-plugins, where every worker of the e2e
# tests would log its refusal.
sked_plugin(refschema ${CMAKE_SOURCE_DIR}/tests/plugins/refschema/refschema.c
            ${CMAKE_BINARY_DIR}/test-plugins-bad)

# plugins.so.<name>: each .so carries a well-formed manifest, exports exactly its two sked
# symbols, and (loaded) has a descriptor that agrees with the manifest. future_abi is read,
# never loaded: its manifest must say 999.
add_executable(check_plugin ${CMAKE_SOURCE_DIR}/tests/plugins/check_plugin.c)
target_include_directories(check_plugin PRIVATE ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(check_plugin PRIVATE PkgConfig::JANSSON ${CMAKE_DL_LIBS})
get_property(plugins GLOBAL PROPERTY SKED_PLUGINS)
foreach(target ${plugins})
  string(REGEX REPLACE "^plugin_" "" name ${target})
  if(name STREQUAL "future_abi")
    add_test(NAME plugins.so.${name} COMMAND check_plugin $<TARGET_FILE:${target}> 999 --no-load)
  else()
    add_test(NAME plugins.so.${name} COMMAND check_plugin $<TARGET_FILE:${target}> 1)
  endif()
  set_tests_properties(plugins.so.${name} PROPERTIES LABELS "plugins" TIMEOUT 60)
endforeach()
# ... and a plugin built wrong on purpose, out of every plugin directory, that it must refuse.
add_library(plugin_bad MODULE ${CMAKE_SOURCE_DIR}/tests/plugins/bad/bad.c)
target_include_directories(plugin_bad PRIVATE ${CMAKE_SOURCE_DIR}/include)
set_target_properties(plugin_bad PROPERTIES OUTPUT_NAME bad PREFIX "" SUFFIX ".so"
                      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/test-plugins-bad
                      C_VISIBILITY_PRESET hidden)
add_test(NAME plugins.so.bad_is_refused
         COMMAND ${CMAKE_COMMAND} -DCHECK=$<TARGET_FILE:check_plugin>
                 -DPLUGIN=$<TARGET_FILE:plugin_bad>
                 -P ${CMAKE_SOURCE_DIR}/tests/plugins/expect_refusals.cmake)
set_tests_properties(plugins.so.bad_is_refused PROPERTIES LABELS "plugins" TIMEOUT 60)
