# make bench: sked-bench starts a real server and worker and prints the table.
add_executable(sked-bench ${CMAKE_SOURCE_DIR}/bench/sked_bench.c)
target_link_libraries(sked-bench PRIVATE sked_common)
add_dependencies(sked-bench sked)
