# plugins.so.bad_is_refused: check_plugin must refuse tests/plugins/bad/bad.so
# (exit 1) and name each of its faults, so the checks of plugins.so.* can fail.
#
#   cmake -DCHECK=check_plugin -DPLUGIN=bad.so -P expect_refusals.cmake
execute_process(COMMAND ${CHECK} ${PLUGIN} 1 RESULT_VARIABLE rc ERROR_VARIABLE err
                OUTPUT_VARIABLE out)
message("${out}${err}")
if(NOT rc EQUAL 1)
  message(FATAL_ERROR "check_plugin exited ${rc}, expected 1")
endif()
foreach(expected
    "manifest: type \"other\" in a file named bad.so"
    "exports bad_leaked_helper: a plugin exports only"
    "descriptor: type \"jobtype/bad\", the manifest makes it \"jobtype/other\""
    "descriptor: version \"2.0.0\", the manifest says \"1.0.0\"")
  string(FIND "${err}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "check_plugin did not say: ${expected}")
  endif()
endforeach()
