# Fuzz targets of tests/fuzz (see tests/fuzz/fuzz.h), included by the top-level CMakeLists.txt.
#   Every build: fuzz/fuzz_<name>, a replay runner (replay.c), and the ctest fuzz/<name>, which
#   makes the target's seeds and replays them with deterministic mutations (regress.sh).
#   -DEMBER_FUZZ=ON (clang only): the same targets linked with libFuzzer, everything compiled
#   with coverage instrumentation, ASan and UBSan (`make fuzz`, tests/fuzz/run.sh).
file(GLOB EMBER_FUZZ_TARGETS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
add_custom_target(fuzz_targets)
foreach(src ${EMBER_FUZZ_TARGETS})
  get_filename_component(name ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" short ${name})
  if(EMBER_FUZZ)
    add_executable(${name} ${src} ${CMAKE_SOURCE_DIR}/tests/fuzz/common.c)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  else()
    add_executable(${name} ${src} ${CMAKE_SOURCE_DIR}/tests/fuzz/common.c
      ${CMAKE_SOURCE_DIR}/tests/fuzz/replay.c)
  endif()
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz)
  target_link_libraries(${name} PRIVATE ember_static)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  add_dependencies(fuzz_targets ${name})
  if(NOT EMBER_FUZZ)
    add_test(NAME fuzz/${short} COMMAND bash ${CMAKE_SOURCE_DIR}/tests/fuzz/regress.sh
      $<TARGET_FILE:${name}> ${short} ${CMAKE_BINARY_DIR}/fuzz/work)
    set_tests_properties(fuzz/${short} PROPERTIES TIMEOUT 300)
  endif()
endforeach()
