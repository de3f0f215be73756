# make bench (bench/run.sh): sked-bench starts real servers and workers and
# prints the SQLite table, then, under tests/store/pg_harness.sh, the
# PostgreSQL cluster table (sked-bench --pg).
add_executable(sked-bench ${CMAKE_SOURCE_DIR}/bench/sked_bench.c)
target_link_libraries(sked-bench PRIVATE sked_common sked_loadgen sked_benchlib PkgConfig::PQ)
add_dependencies(sked-bench sked sked-bench-stamp)

# The dispatch-latency job: the same file reduced to its --stamp mode and
# linked only against what it uses (--as-needed drops sked_common's curl,
# sodium and jansson), so the dynamic loader costs each sample next to
# nothing and the figure is sked's own.
add_executable(sked-bench-stamp ${CMAKE_SOURCE_DIR}/bench/sked_bench.c)
target_compile_definitions(sked-bench-stamp PRIVATE SKED_BENCH_STAMP_ONLY)
target_link_libraries(sked-bench-stamp PRIVATE sked_common)
target_link_options(sked-bench-stamp PRIVATE -Wl,--as-needed)

# The store alone under load (no HTTP): submit, then claim + confirm +
# complete, on a sqlite: or postgres:// URL (bench/store_load.c).
add_executable(sked-store-load ${CMAKE_SOURCE_DIR}/bench/store_load.c)
target_link_libraries(sked-store-load PRIVATE sked_store)

# A workflow of N no-op tasks through the store alone (issue 10, point 7):
# how long the document takes to validate and how fast the store releases
# its tasks, wide (1 -> N-2 -> 1), deep (a chain) and a lattice of joins
# (bench/graph_load.c).
add_executable(sked-graph-load ${CMAKE_SOURCE_DIR}/bench/graph_load.c)
target_link_libraries(sked-graph-load PRIVATE sked_store)
# The same program small, as a test of the store's release: on each engine
# every task of each shape is claimed once, only after its upstreams
# completed, and the workflow run ends succeeded.
add_test(NAME store.graph_load.sqlite
         COMMAND sh -c "rm -f \"$0\" \"$0-wal\" \"$0-shm\" && exec \"$1\" \"sqlite:$0\" --tasks 60 --batch 8"
                 ${CMAKE_CURRENT_BINARY_DIR}/graph_load_test.db $<TARGET_FILE:sked-graph-load>)
set_tests_properties(store.graph_load.sqlite PROPERTIES LABELS "store;sqlite" TIMEOUT 120)
add_test(NAME store.graph_load.postgres
         COMMAND ${CMAKE_SOURCE_DIR}/tests/store/pg_harness.sh sh -c
                 "exec \"$0\" \"$SKED_TEST_PG_URL\" --tasks 60 --batch 8" $<TARGET_FILE:sked-graph-load>)
set_tests_properties(store.graph_load.postgres PROPERTIES LABELS "store;postgres" TIMEOUT 300)

# The dashboard's lists at 100,000 jobs through the store alone: the first
# page of the job list in every sort and with every filter (bench/list_load.c).
add_executable(sked-list-load ${CMAKE_SOURCE_DIR}/bench/list_load.c)
target_link_libraries(sked-list-load PRIVATE sked_store)

# Many idle workers on one server (issue 13, point 7): 5,000 parked claims
# cost descriptors, not threads, and a new run wakes one of them
# (bench/idle_workers.c; it starts its own sked server).
add_executable(sked-idle-workers ${CMAKE_SOURCE_DIR}/bench/idle_workers.c)
target_link_libraries(sked-idle-workers PRIVATE PkgConfig::JANSSON)
add_dependencies(sked-idle-workers sked)

# The HTTP load generator (issue 13): one thread, epoll, keep-alive
# connections, closed or open loop (bench/loadgen.c), as a library for the
# bench and as the CLI `sked-load URL --token T [--rate R] ...`
# (bench/load_main.c). tests/e2e/test_load.py runs it against a real server.
add_library(sked_loadgen STATIC ${CMAKE_SOURCE_DIR}/bench/loadgen.c)
target_include_directories(sked_loadgen PUBLIC ${CMAKE_SOURCE_DIR}/bench)
target_link_libraries(sked_loadgen PUBLIC sked_common m)
add_executable(sked-load ${CMAKE_SOURCE_DIR}/bench/load_main.c)
target_link_libraries(sked-load PRIVATE sked_loadgen)
if(TEST e2e.test_load)
  set_property(TEST e2e.test_load APPEND PROPERTY ENVIRONMENT
               "SKED_LOAD_BIN=$<TARGET_FILE:sked-load>")
endif()

# What the benches that start their own sked processes share: processes,
# /proc, a small HTTP client (bench/benchlib.c).
add_library(sked_benchlib STATIC ${CMAKE_SOURCE_DIR}/bench/benchlib.c)
target_link_libraries(sked-idle-workers PRIVATE sked_benchlib)

# Overhead and utilisation (issue 13, point 5): sked's own CPU per run of a
# job that burns 1 s of CPU, and how busy the worker's slots are with a
# backlog (bench/overhead.c). The job is sked-bench-burn, static so that no
# dynamic loader is counted as the job's or sked's.
add_executable(sked-bench-burn ${CMAKE_SOURCE_DIR}/bench/burn.c)
if(NOT SKED_SANITIZE)
  target_link_options(sked-bench-burn PRIVATE -static)
endif()
add_executable(sked-overhead ${CMAKE_SOURCE_DIR}/bench/overhead.c)
target_link_libraries(sked-overhead PRIVATE sked_benchlib PkgConfig::JANSSON)
add_dependencies(sked-overhead sked sked-bench-burn)

# A burst (issue 13, point 8): 100,000 noop plugin runs due in the same
# second, all claimed within how long (bench/burst.c).
add_executable(sked-burst ${CMAKE_SOURCE_DIR}/bench/burst.c)
target_link_libraries(sked-burst PRIVATE sked_benchlib PkgConfig::JANSSON)
add_dependencies(sked-burst sked plugin_noop)

# Many cron schedules on one server (issue 13, point 6): 10,000 and
# 1,000,000 schedules with ~1,000 due each second; runs made, how far
# ahead, the fire loop's CPU per run (O(due)), RSS and database size
# (bench/schedules.c; it starts its own sked server, and with --worker a
# noop plugin worker).
add_executable(sked-schedules ${CMAKE_SOURCE_DIR}/bench/schedules.c)
target_link_libraries(sked-schedules PRIVATE sked_benchlib sked_common PkgConfig::JANSSON
                      Threads::Threads)
add_dependencies(sked-schedules sked plugin_noop)

# One SQL statement's cost to SQLite on a real store, for callgrind: run
# once per pending run, rolled back (bench/stmt_cost.c; bench/README,
# "Issue 13, fifth session").
add_executable(sked-stmt-cost ${CMAKE_SOURCE_DIR}/bench/stmt_cost.c)
target_link_libraries(sked-stmt-cost PRIVATE PkgConfig::SQLITE)
