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

# gf_include_root(TARGET LAYER [EXCLUDE a.h ...] [HEADERS a.h ...])
# Gives TARGET (and what links it PUBLICly) an include root exposing exactly its headers as
# "LAYER/file.h": LAYER's own headers (not its subfolders': the pci root holds no
# pci/emulated/), or only HEADERS, less EXCLUDE. The root is a build-tree directory of
# symlinks into src/LAYER, remade at configure; the glob re-runs when a header comes or goes.
# src/ itself is no include root, so a target reaches only the layers it links;
# scripts/check-layering.sh checks the rule itself (the `layering` test).
function(gf_include_root target layer)
  cmake_parse_arguments(ARG "" "" "EXCLUDE;HEADERS" ${ARGN})
  set(dir ${PROJECT_SOURCE_DIR}/src/${layer})
  if(ARG_HEADERS)
    list(TRANSFORM ARG_HEADERS PREPEND ${dir}/ OUTPUT_VARIABLE headers)
  else()
    file(GLOB headers CONFIGURE_DEPENDS ${dir}/*.h)
  endif()
  set(root ${PROJECT_BINARY_DIR}/include-roots/${target})
  file(REMOVE_RECURSE ${root})
  file(MAKE_DIRECTORY ${root}/${layer})
  foreach(header IN LISTS headers)
    cmake_path(GET header FILENAME name)
    if(name IN_LIST ARG_EXCLUDE)
      continue()
    endif()
    if(NOT EXISTS ${header})
      message(FATAL_ERROR "gf_include_root(${target}): no header ${header}")
    endif()
    file(CREATE_LINK ${header} ${root}/${layer}/${name} SYMBOLIC)
  endforeach()
  target_include_directories(${target} PUBLIC ${root})
endfunction()
