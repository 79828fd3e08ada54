# swarmhost_add_plugin(<target> SOURCES <file>... [OUTPUT_DIRECTORY <dir>])
#
# Builds a loadable plugin module <target>.so (<target>.dll for Windows, e.g.
# with cmake/toolchains/mingw-w64-x86_64.cmake; no "lib" prefix) that uses only
# the SDK headers (C99, and the optional header-only C++20 layer) and exports
# nothing but swh_plugin_entry. Works in the swarmhost tree and, after
# find_package(swarmhost-sdk), in any other project. Link your own
# dependencies with target_link_libraries(<target> PRIVATE ...) as usual.
#
# The module lands in OUTPUT_DIRECTORY, else in ${SWH_PLUGIN_OUTPUT_DIR} when
# that variable is set, else in the default CMake output folder.
function(swarmhost_add_plugin target)
  cmake_parse_arguments(ARG "" "OUTPUT_DIRECTORY" "SOURCES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "swarmhost_add_plugin(${target}): give SOURCES")
  endif()
  set(_exports_map ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/swarmhost_exports.map)
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE swarmhost::sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  # The C++ helper (swarmhost/cpp/*.hpp) needs C++20; C sources need C99.
  get_property(_langs GLOBAL PROPERTY ENABLED_LANGUAGES)
  if("CXX" IN_LIST _langs)
    get_target_property(_std ${target} CXX_STANDARD)
    if(NOT _std OR _std LESS 20)
      set_target_properties(${target} PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON)
    endif()
  endif()
  if("C" IN_LIST _langs)
    get_target_property(_cstd ${target} C_STANDARD)
    if(NOT _cstd)
      set_target_properties(${target} PROPERTIES C_STANDARD 99)
    endif()
  endif()
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    # Hidden visibility still exports libstdc++ template instantiations (weak
    # and GNU_UNIQUE symbols, the latter making dlclose a no-op); a version
    # script keeps the export list to the entry point. --no-undefined catches
    # a missing library at build time instead of at load time.
    target_link_options(${target} PRIVATE
      "LINKER:--version-script=${_exports_map}" "LINKER:--no-undefined")
    set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${_exports_map})
  elseif(MINGW)
    # A .dll exports what is marked __declspec(dllexport) (SWH_EXPORT on
    # swh_plugin_entry); --exclude-all-symbols turns off ld's auto-export,
    # which would otherwise export every symbol of a DLL that marks none.
    # -static links libgcc, libstdc++ and winpthreads in, so the DLL needs
    # only Windows' own DLLs (docs/sdk.md, "Build a .dll plugin").
    target_link_options(${target} PRIVATE "LINKER:--exclude-all-symbols" -static)
  endif()
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY})
  elseif(DEFINED SWH_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${SWH_PLUGIN_OUTPUT_DIR})
  endif()
endfunction()
