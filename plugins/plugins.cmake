# Plugins: shared objects that each define a job type (include/sked/plugin.h,
# docs/plugins.md). Each is a MODULE library `<name>.so` built from
# plugins/<name>/<name>.c, and every one lands flat in build/plugins/, the
# directory `sked worker --plugin-dir build/plugins` points at. The plugins
# of tests/plugins/ (tests/tests.cmake) use the same function and land in
# build/test-plugins/.
#
# A plugin includes <sked/plugin.h> and libc (plus what it needs itself),
# never sked's own headers or symbols: the host hands it its services as a
# table of function pointers. It is compiled with the project's warnings and
# sanitizer flags (add_compile_options in CMakeLists.txt reach it), with
# hidden visibility, so the manifest and the descriptor (SKED_EXTERN) are
# all it exports; tests/plugins/check_plugin.c proves that of every .so.

# sked_plugin(NAME SOURCE OUTPUT_DIR [LIBS...]): the module NAME.so in OUTPUT_DIR.
function(sked_plugin name source outdir)
  add_library(plugin_${name} MODULE ${source})
  target_include_directories(plugin_${name} PRIVATE ${CMAKE_SOURCE_DIR}/include)
  target_link_libraries(plugin_${name} PRIVATE ${ARGN})
  set_target_properties(plugin_${name} PROPERTIES
    OUTPUT_NAME ${name} PREFIX "" SUFFIX ".so"
    LIBRARY_OUTPUT_DIRECTORY ${outdir}
    C_VISIBILITY_PRESET hidden)
  # A library the plugin forgot to link is found at build time, not when a
  # host loads it (RTLD_NOW). Not with sanitizers: clang keeps their runtime
  # in the executable, so a module has undefined references to it.
  if(NOT SKED_SANITIZE)
    target_link_options(plugin_${name} PRIVATE -Wl,--no-undefined)
  endif()
  set_property(GLOBAL APPEND PROPERTY SKED_PLUGINS plugin_${name})
endfunction()

set(SKED_PLUGIN_DIR ${CMAKE_BINARY_DIR}/plugins)
sked_plugin(noop ${CMAKE_SOURCE_DIR}/plugins/noop/noop.c ${SKED_PLUGIN_DIR})
sked_plugin(sleep ${CMAKE_SOURCE_DIR}/plugins/sleep/sleep.c ${SKED_PLUGIN_DIR} PkgConfig::JANSSON m)
sked_plugin(checksum ${CMAKE_SOURCE_DIR}/plugins/checksum/checksum.c ${SKED_PLUGIN_DIR}
            PkgConfig::JANSSON PkgConfig::SODIUM)
sked_plugin(template ${CMAKE_SOURCE_DIR}/plugins/template/template.c ${SKED_PLUGIN_DIR}
            PkgConfig::JANSSON)

# `cmake --install build --prefix P`: the ABI header in P/include/sked/ (what a plugin built
# outside this tree includes, plugins/template/README.md) and the example plugins in
# P/lib/sked/plugins/ (a worker's --plugin-dir). The template is for copying, not deploying.
install(FILES ${CMAKE_SOURCE_DIR}/include/sked/plugin.h DESTINATION include/sked)
install(TARGETS plugin_noop plugin_sleep plugin_checksum LIBRARY DESTINATION lib/sked/plugins)
