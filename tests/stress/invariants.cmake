# The invariant checker shared by the stress and fault tests (tests/stress) and the fuzzer
# (fuzz/), included by both since the fuzz preset builds no tests.
if(NOT TARGET gf_invariants)
  add_library(gf_invariants STATIC ${CMAKE_CURRENT_LIST_DIR}/invariants.cpp)
  target_include_directories(gf_invariants PUBLIC ${PROJECT_SOURCE_DIR}/src
                                                  ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(gf_invariants PUBLIC gf_driver gf_pci_emulated)
endif()
