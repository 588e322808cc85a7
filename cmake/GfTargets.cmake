# Helpers shared by every layer's CMakeLists.txt.

# gf_add_test(NAME SOURCES a.cpp b.cpp LIBS x y [LABELS l] [TEST_PREFIX p.])
# One GoogleTest executable; each test case becomes a CTest test, discovered
# when CTest runs (so sanitizer builds never run test binaries at build time).
# TEST_PREFIX goes before each case's name (ctest -R can then select the executable).
function(gf_add_test name)
  cmake_parse_arguments(ARG "" "TEST_PREFIX" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main GTest::gmock
                                        Threads::Threads)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  set(labels ${ARG_LABELS})
  if(NOT labels)
    set(labels unit)
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
                       TEST_PREFIX "${ARG_TEST_PREFIX}"
                       PROPERTIES LABELS "${labels}" TIMEOUT 300)
endfunction()

# gf_add_benchmark(NAME SOURCES ... LIBS ...)
function(gf_add_benchmark name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} benchmark::benchmark Threads::Threads)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src)
endfunction()
