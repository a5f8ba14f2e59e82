# The sanitizer runtimes stop at the first report, so that a report fails
# the test rather than scrolling past.
set(LF_SAN_ENV "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1;ASAN_OPTIONS=abort_on_error=1:detect_leaks=1;UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")

# lf_add_test(NAME SOURCES src... [LIBS lib...] [LABELS label...]
#             [ARGS arg...] [TIMEOUT seconds] [DEFINES def...])
# One test program, registered with ctest under its labels, with
# LF_SAN_ENV.
function(lf_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;ARGS;DEFINES" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} lf_platform_user Threads::Threads)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/verify)
  if(T_DEFINES)
    target_compile_definitions(${name} PRIVATE ${T_DEFINES})
  endif()
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES
    LABELS "${T_LABELS}"
    TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "${LF_SAN_ENV}")
endfunction()

# lf_add_test_run(NAME PROGRAM [ARGS arg...] [LABELS label...]
#                 [TIMEOUT seconds] [ENV var=value...])
# Another run of a program lf_add_test() built, with other arguments or
# more environment; the same sanitizer settings.
function(lf_add_test_run name prog)
  cmake_parse_arguments(T "" "TIMEOUT" "ARGS;LABELS;ENV" ${ARGN})
  add_test(NAME ${name} COMMAND ${prog} ${T_ARGS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set(env ${LF_SAN_ENV} ${T_ENV})
  set_tests_properties(${name} PROPERTIES
    LABELS "${T_LABELS}"
    TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "${env}")
endfunction()

# lf_add_preempt_test(NAME MODULE dir SOURCES src... [TIMEOUT seconds])
# A deterministic preemption test (verify/preempt.h): NAME.c with the
# module's sources and the core compiled in, every atomic interposed, the
# module's internal headers visible. Label unit.
function(lf_add_preempt_test name)
  cmake_parse_arguments(T "" "TIMEOUT;MODULE" "SOURCES" ${ARGN})
  lf_add_test(${name}
    SOURCES ${name}.c ${PROJECT_SOURCE_DIR}/verify/preempt.c ${T_SOURCES}
            ${LF_CORE_SOURCES}
    LIBS lf_core_headers DEFINES LF_ATOMIC_INTERPOSE=1 LABELS unit
    TIMEOUT ${T_TIMEOUT})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/${T_MODULE})
endfunction()

find_package(Threads REQUIRED)
