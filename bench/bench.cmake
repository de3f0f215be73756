# make bench (bench/run.sh): sked-bench starts real servers and workers and
# prints the SQLite table, then, under tests/store/pg_harness.sh, the
# PostgreSQL cluster table (sked-bench --pg).
add_executable(sked-bench ${CMAKE_SOURCE_DIR}/bench/sked_bench.c)
target_link_libraries(sked-bench PRIVATE sked_common)
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
