# swarmhost_add_plugin(<target> SOURCES ...)
# Builds a loadable plugin module named <target>.so that uses only the SDK
# headers (C, and the optional header-only C++ layer) and exports nothing but
# swh_plugin_entry.
function(swarmhost_add_plugin target)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  set(_exports_map ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/swarmhost_exports.map)
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE swarmhost::sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    # Hidden visibility still exports libstdc++ template instantiations (weak
    # and GNU_UNIQUE symbols, the latter making dlclose a no-op); a version
    # script keeps the export list to the entry point. --no-undefined catches
    # a missing library at build time instead of at load time.
    target_link_options(${target} PRIVATE
      "LINKER:--version-script=${_exports_map}" "LINKER:--no-undefined")
    set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${_exports_map})
  endif()
  if(DEFINED SWH_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${SWH_PLUGIN_OUTPUT_DIR})
  endif()
endfunction()
