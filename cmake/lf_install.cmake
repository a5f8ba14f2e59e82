# cmake/lf_install.cmake: how a library of lfalloc becomes installable.
#
# A module's CMakeLists.txt adds one line after its add_library():
#
#   lf_install_library(lf_buddy buddy HEADERS buddy.h)
#
# which gives the target
#   - the name lfalloc::buddy, both in this build (an ALIAS, for projects
#     that add_subdirectory(lfalloc)) and in the installed CMake package
#     (find_package(lfalloc) then target_link_libraries(app lfalloc::buddy));
#   - the file name liblfalloc_buddy.a;
#   - its build-tree include directories for this build, and
#     <prefix>/include/lfalloc once installed (the headers include each
#     other by plain name, so the installed folder works like the source
#     folders: #include "buddy.h");
#   - install rules for the library and the HEADERS listed (public headers
#     only: internals such as buddy_i.h stay in the tree);
#   - a place in the pkg-config file lfalloc.pc (static libraries, the
#     dependents first).
# lf_install_finish() (called once, at the end of the top-level
# CMakeLists.txt) writes the package files. Installing is on by default when
# lfalloc is the top-level project and off when it is a subproject
# (LF_INSTALL).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(LF_INSTALL_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR}/lfalloc)

function(lf_install_library target name)
  cmake_parse_arguments(I "" "" "HEADERS" ${ARGN})
  add_library(lfalloc::${name} ALIAS ${target})
  get_target_property(type ${target} TYPE)
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  if(NOT type STREQUAL "INTERFACE_LIBRARY")
    set_target_properties(${target} PROPERTIES OUTPUT_NAME lfalloc_${name})
  endif()

  # Source-tree include folders are for this build only.
  get_target_property(dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
  if(dirs)
    set(wrapped "")
    foreach(d IN LISTS dirs)
      if(d MATCHES "^\\$<")
        list(APPEND wrapped "${d}")
      else()
        list(APPEND wrapped "$<BUILD_INTERFACE:${d}>")
      endif()
    endforeach()
    list(APPEND wrapped "$<INSTALL_INTERFACE:${LF_INSTALL_INCLUDEDIR}>")
    set_target_properties(${target} PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${wrapped}")
  endif()

  if(NOT LF_INSTALL)
    return()
  endif()
  install(TARGETS ${target} EXPORT lfallocTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  if(I_HEADERS)
    install(FILES ${I_HEADERS} DESTINATION ${LF_INSTALL_INCLUDEDIR})
  endif()
  if(NOT type STREQUAL "INTERFACE_LIBRARY")
    set_property(GLOBAL APPEND PROPERTY LF_INSTALL_PC_LIBS ${name})
  endif()
endfunction()

function(lf_install_finish)
  if(NOT LF_INSTALL)
    return()
  endif()
  set(cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/lfalloc)
  install(EXPORT lfallocTargets NAMESPACE lfalloc::
    FILE lfallocTargets.cmake DESTINATION ${cmakedir})
  configure_package_config_file(
    ${PROJECT_SOURCE_DIR}/cmake/lfallocConfig.cmake.in
    ${PROJECT_BINARY_DIR}/lfallocConfig.cmake
    INSTALL_DESTINATION ${cmakedir})
  write_basic_package_version_file(
    ${PROJECT_BINARY_DIR}/lfallocConfigVersion.cmake
    COMPATIBILITY SameMinorVersion)
  install(FILES ${PROJECT_BINARY_DIR}/lfallocConfig.cmake
    ${PROJECT_BINARY_DIR}/lfallocConfigVersion.cmake DESTINATION ${cmakedir})

  # pkg-config: lfalloc (the freestanding libraries) and lfalloc-user
  # (lfalloc with the userspace platform shim). Static libraries: a library
  # comes before those it needs, so the registration order is reversed.
  get_property(names GLOBAL PROPERTY LF_INSTALL_PC_LIBS)
  list(REMOVE_ITEM names platform_user)
  list(REVERSE names)
  set(LF_PC_LIBS "")
  foreach(n IN LISTS names)
    string(APPEND LF_PC_LIBS " -llfalloc_${n}")
  endforeach()
  foreach(pc lfalloc lfalloc-user)
    configure_file(${PROJECT_SOURCE_DIR}/cmake/${pc}.pc.in
      ${PROJECT_BINARY_DIR}/${pc}.pc @ONLY)
    install(FILES ${PROJECT_BINARY_DIR}/${pc}.pc
      DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
  endforeach()
endfunction()
