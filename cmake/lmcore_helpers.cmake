# lm_add_plugin(NAME <kind>_<name> SOURCES ... [LIBS ...])
# Builds lm_<NAME>.so into the build tree's lib/lmcore/plugins/ folder, linked to
# liblmcore for the host services.  The file name does not matter to the
# loader (it reads the descriptor); the convention keeps listings readable.
function(lm_add_plugin)
  cmake_parse_arguments(P "" "NAME" "SOURCES;LIBS" ${ARGN})
  add_library(lmplugin_${P_NAME} MODULE ${P_SOURCES})
  set_target_properties(lmplugin_${P_NAME} PROPERTIES
    PREFIX "" OUTPUT_NAME "lm_${P_NAME}"
    LIBRARY_OUTPUT_DIRECTORY ${LMCORE_PLUGIN_OUTPUT_DIR}
    C_VISIBILITY_PRESET hidden
    BUILD_RPATH "$ORIGIN/../.."
    INSTALL_RPATH "$ORIGIN/../..")
  target_link_libraries(lmplugin_${P_NAME} PRIVATE lmcore ${P_LIBS})
  install(TARGETS lmplugin_${P_NAME} LIBRARY DESTINATION ${LMCORE_PLUGIN_INSTALL_DIR})
endfunction()

# lm_add_check_test(NAME test_x SOURCES ... [LIBS ...] [LABELS ...] [TIMEOUT s])
# A Check suite run by CTest with the build tree's plugins and the source
# tree's scripts and fixtures at hand.
function(lm_add_check_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE lmcore PkgConfig::CHECK ${T_LIBS})
  target_include_directories(${T_NAME} PRIVATE ${LMCORE_INTERNAL_INCLUDE_DIRS} ${PROJECT_SOURCE_DIR}/tests/common)
  target_compile_definitions(${T_NAME} PRIVATE
    LM_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    LM_TEST_BINARY_DIR="${CMAKE_BINARY_DIR}"
    LM_TEST_PLUGIN_DIR="${LMCORE_PLUGIN_OUTPUT_DIR}"
    LM_TEST_SHARED_DATA_DIR="${PROJECT_SOURCE_DIR}/../shared/data")
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "CK_DEFAULT_TIMEOUT=${T_TIMEOUT};LMCORE_PLUGIN_PATH=")
  if(T_LABELS)
    set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()

# lm_add_device_check_test(NAME test_x SOURCES ... [LIBS ...] [TIMEOUT s]
#                          [CUDA_TIMEOUT s] [DEPENDS targets...] CUDA_DEFINES ...)
# One Check suite built twice from the same sources: test_x on the CPU
# backend, and, where the CUDA kernels are built, test_x_cuda with
# CUDA_DEFINES (the source's switch to the CUDA backend), label gpu
# (tests/gpu/run.sh runs it) and exit code 77 counted as skipped (no usable
# GPU).  CUDA_TIMEOUT defaults to TIMEOUT; DEPENDS (the plugins the suite
# dlopens) are built before either.
function(lm_add_device_check_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT;CUDA_TIMEOUT" "SOURCES;LIBS;CUDA_DEFINES;DEPENDS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  if(NOT T_CUDA_TIMEOUT)
    set(T_CUDA_TIMEOUT ${T_TIMEOUT})
  endif()
  lm_add_check_test(NAME ${T_NAME} SOURCES ${T_SOURCES} LIBS ${T_LIBS} TIMEOUT ${T_TIMEOUT})
  if(T_DEPENDS)
    add_dependencies(${T_NAME} ${T_DEPENDS})
  endif()
  if(TARGET lmkernels_cuda)
    lm_add_check_test(NAME ${T_NAME}_cuda SOURCES ${T_SOURCES} LIBS ${T_LIBS} LABELS gpu TIMEOUT ${T_CUDA_TIMEOUT})
    target_compile_definitions(${T_NAME}_cuda PRIVATE ${T_CUDA_DEFINES})
    set_tests_properties(${T_NAME}_cuda PROPERTIES SKIP_RETURN_CODE 77)
    if(T_DEPENDS)
      add_dependencies(${T_NAME}_cuda ${T_DEPENDS})
    endif()
  endif()
endfunction()
